"""Use cases of GitLab's Packages API (E10-E13): list, show, list files, delete.

Deleting (E13) is done in an order a client may retry at any point, so that a failure halfway loses
nothing and leaves nothing served:
1. the files are marked `deleting` (no page, download or listing shows them from now on);
2. the simple documents of every scope (the project and each ancestor group) are rebuilt without them,
   this replica's cached pages are dropped, and `index.changed` tells every other replica;
3. `file.deleted` asks the metadata-worker to remove the objects afterwards;
4. the file documents, their core metadata, and the package once it has no file left, are removed.
Only then does the client get 204. A retried DELETE finds the `deleting` files and runs the steps again.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry_shared.errors import NotFound, ServiceUnavailable
from registry_shared.events import Event, FileDeleted, IndexChanged, PackageDeleted, Scope
from registry_shared.logging import get_logger
from registry_shared.pages import PagesUnstable
from registry_shared.records.files import FileState, StoredFile
from registry_shared.records.packages import PackageRecord

from .access import ReadScope
from .cache import PageCache
from .listing import ListQuery, PageRequest, paginate, sort_packages

log = get_logger()


# -- ports -------------------------------------------------------------------------------------

class ManagementRepository(Protocol):
    async def projects(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...
    async def listed_packages(self, project_ids: Sequence[int]) -> list[PackageRecord]: ...
    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None: ...
    async def package_versions(self, project_id: int, name: str) -> list[PackageRecord]: ...
    async def files(self, project_id: int, package_id: int,
                    states: Sequence[FileState] = (FileState.INSTALLABLE,)) -> list[StoredFile]: ...
    async def mark_deleting(self, file_id: int, project_id: int) -> None: ...
    async def remove_file(self, file_id: int) -> None: ...
    async def drop_package_if_empty(self, package: PackageRecord) -> bool: ...


class PageRebuilder(Protocol):
    """`registry_shared.pages.PageBuilder`."""

    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


# -- results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    packages: list[PackageRecord]  # this page of them
    total: int
    projects: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> project, for every package


@dataclass(frozen=True)
class PackageDetail:
    package: PackageRecord
    files: list[StoredFile]
    versions: list[PackageRecord]


# -- use cases ---------------------------------------------------------------------------------

class PackageManagement:
    def __init__(self, repo: ManagementRepository, pages: PageRebuilder, page_cache: PageCache,
                 publisher: Publisher) -> None:
        self.repo = repo
        self.pages = pages
        self.page_cache = page_cache
        self.publisher = publisher

    async def list_packages(self, scope: ReadScope, query: ListQuery) -> Listing:
        """E10: packages of the projects this caller may read in the scope, filtered, ordered, one page."""
        if scope.kind == "project":
            projects = {scope.id: scope.doc}
        else:
            projects = await self.repo.projects(scope.project_ids)
            if query.exclude_subgroups:
                projects = {pid: p for pid, p in projects.items() if p.get("namespace_id") == scope.id}
        if not query.can_match or not projects:
            return Listing([], 0, projects)
        found = [p for p in await self.repo.listed_packages(sorted(projects)) if query.matches(p)]
        paths = {pid: str(p.get("path", "")) for pid, p in projects.items()}
        ordered = sort_packages(found, query, paths)
        return Listing(paginate(ordered, query.page), len(ordered), projects)

    async def get_package(self, project: dict[str, Any], package_id: int) -> PackageDetail:
        """E11: a package of this project with at least one installable file, else 404."""
        package, files = await self._installable(project, package_id)
        versions = await self.repo.package_versions(project["_id"], package.name)
        return PackageDetail(package, files, versions)

    async def package_files(self, project: dict[str, Any], package_id: int,
                            page: PageRequest) -> tuple[list[StoredFile], int]:
        """E12: one page of the package's files, oldest first, and how many there are."""
        _package, files = await self._installable(project, package_id)
        return paginate(files, page), len(files)

    async def _installable(self, project: dict[str, Any], package_id: int
                           ) -> tuple[PackageRecord, list[StoredFile]]:
        package = await self.repo.find_package(project["_id"], package_id)
        files = await self.repo.files(project["_id"], package_id) if package else []
        if package is None or not files:
            raise NotFound()
        return package, files

    async def delete_package(self, project: dict[str, Any], package_id: int, correlation_id: str | None, *,
                             actor: dict[str, object] | None = None, ip_address: str = "") -> None:
        """E13: the package and every file of it. `actor` and `ip_address` go into the audit record."""
        package = await self.repo.find_package(project["_id"], package_id)
        if package is None:
            raise NotFound()
        files = await self.repo.files(project["_id"], package_id, (FileState.INSTALLABLE, FileState.DELETING))
        await self._delete(project, package, files, correlation_id)
        await self._record(PackageDeleted(project_id=project["_id"], package_id=package.id, name=package.shown_name,
                                           version=package.shown_version, filenames=[f.filename for f in files],
                                           whole_package=True, actor=actor or {}, ip_address=ip_address),
                            correlation_id)

    async def delete_file(self, project: dict[str, Any], package_id: int, file_id: int,
                          correlation_id: str | None, *, actor: dict[str, object] | None = None,
                          ip_address: str = "") -> None:
        """E13: one file of the package; the package goes with its last file."""
        package = await self.repo.find_package(project["_id"], package_id)
        states = (FileState.INSTALLABLE, FileState.DELETING)
        files = await self.repo.files(project["_id"], package_id, states) if package else []
        chosen = [f for f in files if f.id == file_id]
        if package is None or not chosen:
            raise NotFound()
        await self._delete(project, package, chosen, correlation_id)
        await self._record(PackageDeleted(project_id=project["_id"], package_id=package.id, name=package.shown_name,
                                           version=package.shown_version, filenames=[f.filename for f in chosen],
                                           whole_package=False, actor=actor or {}, ip_address=ip_address),
                            correlation_id)

    async def _delete(self, project: dict[str, Any], package: PackageRecord, files: list[StoredFile],
                      correlation_id: str | None) -> None:
        name = package.name
        for file in files:
            await self.repo.mark_deleting(file.id, project["_id"])
        try:
            scopes = await self.pages.rebuild_scopes(project, [name])
        except PagesUnstable as exc:  # concurrent uploads kept the pages moving: the retry finishes
            raise ServiceUnavailable("503 Service Unavailable - the index is busy; retry") from exc
        self.page_cache.invalidate([(s.kind, s.id) for s in scopes], [name])
        await self._publish(IndexChanged(scopes=scopes, names=[name]), correlation_id)
        for file in files:
            await self._publish(FileDeleted(file_id=file.id, project_id=project["_id"],
                                            object_keys=[file.object_key]), correlation_id)
        for file in files:
            await self.repo.remove_file(file.id)
        package_gone = await self.repo.drop_package_if_empty(package)
        log.info("package_files_deleted", project_id=project["_id"], package_id=package.id, name=name,
                 file_ids=[f.id for f in files], package_deleted=package_gone, scopes=len(scopes))

    async def _record(self, event: PackageDeleted, correlation_id: str | None) -> None:
        """The audit fact of a finished deletion: the deletion holds whatever the broker says."""
        try:
            await self.publisher.publish(event, correlation_id)
        except Exception as exc:  # noqa: BLE001 - the files are gone; a retried DELETE would only 404
            log.error("deletion_record_not_published", package_id=event.package_id, error=type(exc).__name__)

    async def _publish(self, event: Event, correlation_id: str | None) -> None:
        try:
            await self.publisher.publish(event, correlation_id)
        except Exception as exc:
            # The files stay `deleting` (served nowhere); the client's retry publishes again.
            log.error("deletion_publish_failed", event_kind=event.kind, error=type(exc).__name__)
            raise ServiceUnavailable("503 Service Unavailable - the deletion could not be announced; retry") from exc
