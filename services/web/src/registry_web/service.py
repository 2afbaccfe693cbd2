"""The web interface's use cases: what each page shows, for one visitor. No HTTP here (views.py)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from registry_shared.deletion import PackageDeletion
from registry_shared.domain.access import Principal
from registry_shared.domain.names import normalize_name
from registry_shared.errors import NotFound
from registry_shared.pages import version_key
from registry_shared.records.files import StoredFile
from registry_shared.records.times import stored_time

from .access import Readable, WebAccess
from .adapters.mongo import MongoCatalog
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


@dataclass(frozen=True)
class FileRow:
    file: StoredFile
    uploader: str
    yanked: bool
    yanked_reason: str


@dataclass(frozen=True)
class PackageView:
    project: dict[str, Any]
    package_id: int
    name: str
    normalised: str
    version: str
    status: str  # the package's status when the policy branch sets one (PEP 792), else ""
    readme_html: str | None
    readme_source: str | None  # shown as text when the worker rendered nothing (older uploads)
    metadata: ShownMetadata
    files: list[FileRow]
    versions: list[VersionRow]
    yanked: bool
    can_delete: bool
    index_url: str
    extra: dict[str, Any] = field(default_factory=dict)


def _time(doc: dict[str, Any]) -> datetime | None:
    return stored_time(doc.get("created_at")) or stored_time(doc.get("indexed_at"))


def _is_yanked(doc: dict[str, Any]) -> bool:
    return bool(doc.get("yanked"))


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


class WebCatalog:
    def __init__(self, catalog: MongoCatalog, access: WebAccess, deletion: PackageDeletion,
                 external_url: str) -> None:
        self.catalog = catalog
        self.access = access
        self.deletion = deletion
        self.external_url = external_url

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
        return replace(view, can_delete=await self.access.may_delete(principal, project))

    async def _package(self, project: dict[str, Any], package_id: int) -> PackageView:
        """What every visitor who may read the project sees of the package page."""
        package = await self.catalog.find_package(project["_id"], package_id)
        files = await self.catalog.package_files(project["_id"], package_id) if package else []
        if package is None or not files:
            raise NotFound()
        first, first_doc = files[0]
        uploaders = await self.access.usernames(sorted({int(f.uploader["user_id"]) for f, _ in files
                                                        if f.uploader.get("user_id") is not None}))
        rows = [FileRow(f, self._uploader(f, uploaders), _is_yanked(doc), str(doc.get("yanked_reason") or ""))
                for f, doc in files]
        # The README of the newest file that has one (a wheel and an sdist of a version usually agree).
        with_readme = [doc for _, doc in files if doc.get("description_html")]
        readme = str(with_readme[-1]["description_html"]) if with_readme else None
        metadata = parse_shown(await self.catalog.core_metadata(files[-1][0].id))
        return PackageView(
            project=project, package_id=package_id, name=first.display_name or first.name, normalised=first.name,
            version=first.version, status=str(package.get("status") or ""), readme_html=readme,
            readme_source=None if readme else (first_doc.get("description") or None),
            metadata=metadata, files=rows, versions=await self._versions(project["_id"], first.name),
            yanked=all(r.yanked for r in rows), can_delete=False,
            index_url=f"{self.external_url}/api/v4/projects/{project['_id']}/packages/pypi/simple")

    async def _versions(self, project_id: int, name: str) -> list[VersionRow]:
        by_package: dict[int, list[dict[str, Any]]] = {}
        for row in await self.catalog.name_rows(project_id, name):
            by_package.setdefault(int(row.get("package_id") or 0), []).append(row)
        versions = []
        for package_id, files in by_package.items():
            times = [t for t in (_time(f) for f in files) if t is not None]
            reasons = [str(f.get("yanked_reason") or f.get("yanked")) for f in files
                       if f.get("yanked_reason") or isinstance(f.get("yanked"), str)]
            versions.append(VersionRow(str(files[0].get("version", "")), package_id, min(times) if times else None,
                                       all(_is_yanked(f) for f in files), reasons[0] if reasons else ""))
        return sorted(versions, key=lambda v: version_key(v.version), reverse=True)

    @staticmethod
    def _uploader(file: StoredFile, names: dict[int, str]) -> str:
        user_id = file.uploader.get("user_id")
        if user_id is not None and int(user_id) in names:
            return names[int(user_id)]
        kind = str(file.uploader.get("principal") or "")
        return {"deploy_token": "a deploy token", "job": "a CI job"}.get(kind, "unknown")

    async def delete_version(self, principal: Principal, path: str, package_id: int,
                             correlation_id: str | None) -> dict[str, Any]:
        """The maintainer's delete form: the same use case as the Packages API's E13."""
        project = await self.access.project(principal, path)
        await self.access.authorize_delete(principal, project)
        await self.deletion.delete_package(project, package_id, correlation_id)
        return project
