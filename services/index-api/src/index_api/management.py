"""Use cases of GitLab's Packages API (E10-E13): list, show, list files, delete.

Deleting (E13) is `registry_shared.deletion.PackageDeletion` (the web interface's delete form calls it too):
an order a client may retry at any point, so that a failure halfway loses nothing and leaves nothing served.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from registry_shared.deletion import DeletionRepository, PackageDeletion, PageRebuilder, Publisher
from registry_shared.errors import NotFound
from registry_shared.records.files import StoredFile
from registry_shared.records.packages import PackageRecord

from .access import ReadScope
from .cache import PageCache
from .listing import ListQuery, PageRequest, paginate, sort_packages

# -- ports -------------------------------------------------------------------------------------

class ManagementRepository(DeletionRepository, Protocol):
    async def projects(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...
    async def listed_packages(self, project_ids: Sequence[int]) -> list[PackageRecord]: ...
    async def package_versions(self, project_id: int, name: str) -> list[PackageRecord]: ...


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
        self.deletion = PackageDeletion(repo, pages, publisher,
                                        lambda scopes, name: page_cache.invalidate([(s.kind, s.id) for s in scopes],
                                                                                   [name]))

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
        """E13: the package and every file of it (`registry_shared.deletion`, as the web interface's form).
        `actor` and `ip_address` go into the audit record."""
        await self.deletion.delete_package(project, package_id, correlation_id, actor=actor, ip_address=ip_address)

    async def delete_file(self, project: dict[str, Any], package_id: int, file_id: int,
                          correlation_id: str | None, *, actor: dict[str, object] | None = None,
                          ip_address: str = "") -> None:
        """E13: one file of the package; the package goes with its last file."""
        await self.deletion.delete_file(project, package_id, file_id, correlation_id, actor=actor,
                                        ip_address=ip_address)
