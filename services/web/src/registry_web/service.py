"""The web interface's use cases: what each page shows, for one visitor. No HTTP here (views.py)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from registry_shared.adapters.policies import PolicyBook, chain_of
from registry_shared.deletion import PackageDeletion
from registry_shared.domain.access import Principal
from registry_shared.domain.names import normalize_name
from registry_shared.errors import NotFound
from registry_shared.governance.service import Governance
from registry_shared.governance.yank import YankResult, YankService
from registry_shared.pages import version_key
from registry_shared.policy.status import PackageStatus, Status
from registry_shared.policy_management import PolicyManagement
from registry_shared.records.files import StoredFile
from registry_shared.records.times import stored_time

from .access import Readable, WebAccess
from .adapters.mongo import MongoCatalog
from .badges import StatusBadge, WithheldBadge, file_badge, is_yanked, status_badge, version_badge, yank_reason
from .metadata import ShownMetadata, parse_shown

PER_PAGE = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    number: int
    total: int  # items

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))

    def slice(self, items: Sequence[Any]) -> list[Any]:
        start = (self.number - 1) * PER_PAGE
        return list(items[start:start + PER_PAGE])


@dataclass(frozen=True)
class PackageRow:
    """One package name of one project, as lists and search results show it."""

    project: dict[str, Any]
    name: str  # as uploaded
    latest: str  # latest version (not yanked, when one is)
    package_id: int  # the latest version's package
    summary: str
    updated: datetime | None


@dataclass(frozen=True)
class VersionRow:
    version: str
    package_id: int
    uploaded: datetime | None
    yanked: bool
    yanked_reason: str = ""
    files: tuple[tuple[str, datetime | None], ...] = ()  # (filename, upload time): what the policy judges
    withheld: WithheldBadge | None = None  # set per request: the policy's verdict changes with the time


@dataclass(frozen=True)
class FileRow:
    file: StoredFile
    uploader: str
    yanked: bool
    yanked_reason: str
    withheld: WithheldBadge | None = None  # set per request


@dataclass(frozen=True)
class PackageView:
    """A package page. What every reader sees alike is cached (cache.py); `status`, the `withheld` badges
    and `can_manage` are set per request from the PolicyBook, the clock and the visitor."""

    project: dict[str, Any]
    package_id: int
    name: str
    normalised: str
    version: str
    readme_html: str | None
    readme_source: str | None  # shown as text when the worker rendered nothing (older uploads)
    metadata: ShownMetadata
    files: list[FileRow]
    versions: list[VersionRow]
    yanked: bool
    yanked_reason: str
    index_url: str
    status: StatusBadge | None = None  # PEP 792 (SPEC §9), from `package_statuses`
    withheld: WithheldBadge | None = None  # every file of this version is withheld by the policy now
    can_manage: bool = False  # the maintainer's forms (delete, yank, status)
    extra: dict[str, Any] = field(default_factory=dict)


def _time(doc: dict[str, Any]) -> datetime | None:
    return stored_time(doc.get("created_at")) or stored_time(doc.get("indexed_at"))


def _is_yanked(doc: dict[str, Any]) -> bool:
    return is_yanked(doc.get("yanked"))


def aggregate(rows: Sequence[dict[str, Any]], projects: dict[int, dict[str, Any]]) -> list[PackageRow]:
    """File rows -> one PackageRow per (project, name), sorted by name then project path."""
    by_name: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_name.setdefault((int(row["project_id"]), str(row.get("name", ""))), []).append(row)
    result = []
    for (project_id, _name), files in by_name.items():
        live = [f for f in files if not _is_yanked(f)] or files
        latest = max(live, key=lambda f: (version_key(str(f.get("version", ""))), _time(f) or _EPOCH))
        times = [t for t in (_time(f) for f in files) if t is not None]
        result.append(PackageRow(project=projects[project_id], name=str(latest.get("display_name") or
                                                                        latest.get("name")),
                                 latest=str(latest.get("version", "")), package_id=int(latest.get("package_id") or 0),
                                 summary=str(latest.get("summary") or ""), updated=max(times) if times else None))
    return sorted(result, key=lambda r: (r.name.lower(), str(r.project.get("path", "")).lower()))


def matches(row: PackageRow, query: str) -> bool:
    """A case-insensitive substring of the name (in any `-`/`_`/`.` spelling) or of the summary."""
    needle = query.strip().lower()
    if not needle:
        return True
    return (needle in row.name.lower() or normalize_name(needle) in normalize_name(row.name)
            or needle in row.summary.lower())


@dataclass(frozen=True)
class UseCases:
    """The shared use cases behind the maintainer's forms: the very ones the API's endpoints call."""

    deletion: PackageDeletion  # E13
    governance: Governance  # protection rules: `check_delete` (SPEC §10)
    yank: YankService  # POST|DELETE .../packages/:id/yank
    policy: PolicyManagement  # PUT .../packages/pypi/status/:name
    book: PolicyBook  # every level's policy and every status, kept until a policy event drops it


@dataclass(frozen=True)
class Who:
    """Who acts, for the audit record (SPEC §10): the principal's ids, the client's address, the request."""

    principal: Principal
    ip_address: str
    correlation_id: str | None

    @property
    def actor(self) -> dict[str, object]:
        return self.principal.log_fields()


class WebCatalog:
    def __init__(self, catalog: MongoCatalog, access: WebAccess, uses: UseCases, external_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.catalog = catalog
        self.access = access
        self.uses = uses
        self.external_url = external_url
        self.clock = clock

    async def landing(self, principal: Principal) -> Readable:
        return await self.access.readable(principal)

    async def search(self, principal: Principal, query: str, page: int) -> tuple[list[PackageRow], Page]:
        projects = await self.access.readable_projects(principal, await self.catalog.all_projects())
        return await self._rows(projects, query, page)

    async def listing(self, principal: Principal, path: str, query: str, page: int
                      ) -> tuple[str, dict[str, Any], list[PackageRow], Page]:
        kind, scope, projects = await self.access.scope(principal, path)
        rows, shown = await self._rows(projects, query, page)
        return kind, scope, rows, shown

    async def _rows(self, projects: list[dict[str, Any]], query: str, page: int) -> tuple[list[PackageRow], Page]:
        by_id = {int(p["_id"]): p for p in projects}
        rows = [r for r in aggregate(await self.catalog.file_rows(sorted(by_id)), by_id) if matches(r, query)]
        shown = Page(page, len(rows))
        return shown.slice(rows), shown

    async def package(self, principal: Principal, path: str, package_id: int) -> PackageView:
        project = await self.access.project(principal, path)
        pages = self.access.caches.pages
        view: PackageView | None = pages.get(project["_id"], package_id)
        if view is None:
            view = await self._package(project, package_id)
            pages.put(project["_id"], package_id, view.normalised, view)
        view = await self._badges(view)
        return replace(view, can_manage=await self.access.may_manage(principal, project))

    async def _badges(self, view: PackageView) -> PackageView:
        """The status and what the project's effective policy withholds now (local files)."""
        book = self.uses.book
        status = status_badge(await book.status(int(view.project["_id"]), view.normalised))
        policy = await book.effective(chain_of("project", view.project))
        if not policy or policy.passes_all(view.normalised, local=True):
            return replace(view, status=status) if status is not None else view
        now = self.clock()
        name = view.normalised
        files = [replace(row, withheld=file_badge(policy, name, row.file.version, row.file.filename,
                                                  row.file.created_at, now)) for row in view.files]
        versions = [replace(v, withheld=version_badge(policy, name, v.version, v.files, now)) for v in view.versions]
        badges = [row.withheld for row in files]
        withheld = badges[0] if badges and all(b is not None for b in badges) else None
        return replace(view, status=status, files=files, versions=versions, withheld=withheld)

    async def _package(self, project: dict[str, Any], package_id: int) -> PackageView:
        """What every visitor who may read the project sees of the package page."""
        package = await self.catalog.find_package(project["_id"], package_id)
        files = await self.catalog.package_files(project["_id"], package_id) if package else []
        if package is None or not files:
            raise NotFound()
        first, first_doc = files[0]
        uploaders = await self.access.usernames(sorted({int(f.uploader["user_id"]) for f, _ in files
                                                        if f.uploader.get("user_id") is not None}))
        rows = [FileRow(f, self._uploader(f, uploaders), _is_yanked(doc), yank_reason(doc.get("yanked")))
                for f, doc in files]
        # The README of the newest file that has one (a wheel and an sdist of a version usually agree).
        with_readme = [doc for _, doc in files if doc.get("description_html")]
        readme = str(with_readme[-1]["description_html"]) if with_readme else None
        metadata = parse_shown(await self.catalog.core_metadata(files[-1][0].id))
        yanked = all(r.yanked for r in rows)
        return PackageView(
            project=project, package_id=package_id, name=first.display_name or first.name, normalised=first.name,
            version=first.version, readme_html=readme,
            readme_source=None if readme else (first_doc.get("description") or None),
            metadata=metadata, files=rows, versions=await self._versions(project["_id"], first.name),
            yanked=yanked, yanked_reason=next((r.yanked_reason for r in rows if r.yanked_reason), "") if yanked else "",
            index_url=f"{self.external_url}/api/v4/projects/{project['_id']}/packages/pypi/simple")

    async def _versions(self, project_id: int, name: str) -> list[VersionRow]:
        by_package: dict[int, list[dict[str, Any]]] = {}
        for row in await self.catalog.name_rows(project_id, name):
            by_package.setdefault(int(row.get("package_id") or 0), []).append(row)
        versions = []
        for package_id, files in by_package.items():
            times = [t for t in (_time(f) for f in files) if t is not None]
            yanked = all(_is_yanked(f) for f in files)
            reason = next((r for f in files if (r := yank_reason(f.get("yanked")))), "") if yanked else ""
            versions.append(VersionRow(str(files[0].get("version", "")), package_id, min(times) if times else None,
                                       yanked, reason,
                                       tuple((str(f.get("filename", "")), _time(f)) for f in files)))
        return sorted(versions, key=lambda v: version_key(v.version), reverse=True)

    @staticmethod
    def _uploader(file: StoredFile, names: dict[int, str]) -> str:
        user_id = file.uploader.get("user_id")
        if user_id is not None and int(user_id) in names:
            return names[int(user_id)]
        kind = str(file.uploader.get("principal") or "")
        return {"deploy_token": "a deploy token", "job": "a CI job"}.get(kind, "unknown")

    # -- the maintainer's forms: the same use cases, permissions and audit facts as the API --------------

    async def delete_version(self, who: Who, path: str, package_id: int) -> dict[str, Any]:
        """E13's delete: maintainer and above, then 403 `Package protected.` where a protection rule's delete
        level is above the visitor (as index-api's `_deleter`)."""
        project = await self.access.project(who.principal, path)
        facts = await self.access.authorize_delete(who.principal, project)
        await self.uses.governance.check_delete(project, package_id, who.principal, facts)
        await self.uses.deletion.delete_package(project, package_id, who.correlation_id, actor=who.actor,
                                                ip_address=who.ip_address)
        return project

    async def yank(self, who: Who, path: str, package_id: int, reason: str | None) -> YankResult:
        """POST .../packages/:id/yank: maintainer and above, as the API (`authorize_delete`)."""
        project = await self.access.project(who.principal, path)
        await self.access.authorize_delete(who.principal, project)
        result = await self.uses.yank.yank(project, package_id, reason, actor=who.actor, ip_address=who.ip_address,
                                           correlation_id=who.correlation_id)
        self._dropped(project, result.package.name)
        return result

    async def unyank(self, who: Who, path: str, package_id: int) -> YankResult:
        project = await self.access.project(who.principal, path)
        await self.access.authorize_delete(who.principal, project)
        result = await self.uses.yank.unyank(project, package_id, actor=who.actor, ip_address=who.ip_address,
                                             correlation_id=who.correlation_id)
        self._dropped(project, result.package.name)
        return result

    async def set_status(self, who: Who, path: str, package_id: int, status: Status, reason: str) -> PackageStatus:
        """PUT .../packages/pypi/status/:name for this version's name: maintainer and above with an `api`
        token, as the API (`authorize_manage`)."""
        project = await self.access.project(who.principal, path)
        await self.access.authorize_manage(who.principal, project)
        package = await self.catalog.find_package(project["_id"], package_id)
        if package is None:
            raise NotFound()
        return await self.uses.policy.set_status(
            PackageStatus(int(project["_id"]), normalize_name(str(package["name"])), status, reason), who.actor,
            who.ip_address, who.correlation_id)

    def _dropped(self, project: dict[str, Any], name: str) -> None:
        """This replica's own copy goes at once (its consumer drops it too, before the use case returns)."""
        self.access.caches.pages.invalidate({int(project["_id"])}, {name})
