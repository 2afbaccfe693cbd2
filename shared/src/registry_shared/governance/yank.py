"""Yank and unyank a release (PEP 592), the use case behind `POST|DELETE .../packages/:package_id/yank`.

Every file of the release carries the yank in its `distributions` document; the precomputed simple
documents of every scope are rebuilt from them (as a deletion does), and `index.changed` returns once
every live index-api replica dropped its copy, so the answer means every page shows it. Downloads are
untouched. The web interface calls this same use case.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import NotFound, ServiceUnavailable
from ..events import Event, IndexChanged, PackageUnyanked, PackageYanked, Scope
from ..logging import get_logger
from ..pages import PagesUnstable
from ..records.packages import PackageRecord

log = get_logger()
MAX_REASON = 1000


class YankStore(Protocol):
    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None: ...
    async def set_yanked(self, package: PackageRecord, yanked: bool | str) -> int:
        """Mark every installable file of the release (and the package); returns how many files."""


class PageRebuilder(Protocol):
    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


@dataclass(frozen=True)
class YankResult:
    package: PackageRecord
    yanked: bool | str  # what the files now carry: False, True (no reason) or the reason
    files: int


def yank_value(reason: str | None) -> bool | str:
    """PEP 691: `"yanked": "<reason>"`, or `true` without one."""
    reason = (reason or "").strip()[:MAX_REASON]
    return reason or True


class YankService:
    def __init__(self, store: YankStore, pages: PageRebuilder, publisher: Publisher) -> None:
        self.store = store
        self.pages = pages
        self.publisher = publisher

    async def yank(self, project: dict[str, Any], package_id: int, reason: str | None, *,
                   actor: dict[str, object], ip_address: str = "", correlation_id: str | None = None) -> YankResult:
        value = yank_value(reason)
        result = await self._apply(project, package_id, value, correlation_id)
        await self.publisher.publish(PackageYanked(
            project_id=int(project["_id"]), package_id=package_id, name=result.package.name,
            version=result.package.shown_version, reason=value if isinstance(value, str) else "", actor=actor,
            ip_address=ip_address), correlation_id)
        return result

    async def unyank(self, project: dict[str, Any], package_id: int, *, actor: dict[str, object],
                     ip_address: str = "", correlation_id: str | None = None) -> YankResult:
        result = await self._apply(project, package_id, False, correlation_id)
        await self.publisher.publish(PackageUnyanked(
            project_id=int(project["_id"]), package_id=package_id, name=result.package.name,
            version=result.package.shown_version, actor=actor, ip_address=ip_address), correlation_id)
        return result

    async def _apply(self, project: dict[str, Any], package_id: int, value: bool | str,
                     correlation_id: str | None) -> YankResult:
        package = await self.store.find_package(int(project["_id"]), package_id)
        if package is None:
            raise NotFound()
        files = await self.store.set_yanked(package, value)
        if not files:
            raise NotFound()
        try:
            scopes = await self.pages.rebuild_scopes(project, [package.name])
        except PagesUnstable as exc:  # concurrent uploads kept the pages moving: the retry finishes
            raise ServiceUnavailable("503 Service Unavailable - the index is busy; retry") from exc
        # Returns once every live index-api replica dropped its cached pages (registry_shared.replicas).
        await self.publisher.publish(IndexChanged(scopes=scopes, names=[package.name]), correlation_id)
        log.info("package_yank_set", project_id=project["_id"], package_id=package_id, name=package.name,
                 version=package.version, yanked=bool(value), files=files)
        return YankResult(package, value, files)
