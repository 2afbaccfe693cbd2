"""Deleting a package or one of its files (E13), the one use case the Packages API (index-api) and the web
interface's delete form (services/web) both call.

Done in an order a client may retry at any point, so that a failure halfway loses nothing and leaves
nothing served:
1. the files are marked `deleting` (no page, download or listing shows them from now on);
2. the simple documents of every scope (the project and each ancestor group) are rebuilt without them,
   the caller's own cached pages are dropped (`on_rebuilt`), and `index.changed` tells every index-api
   replica (the publisher waits until each has applied it);
3. `file.deleted` asks the metadata-worker to remove the objects afterwards;
4. the file documents, their core metadata, and the package once it has no file left, are removed;
5. `package.deleted` (the audit record's fact, SPEC §10) says who deleted what.
Only then does the caller answer. A retried delete finds the `deleting` files and runs the steps again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .errors import NotFound, ServiceUnavailable
from .events import Event, FileDeleted, IndexChanged, PackageDeleted, Scope
from .logging import get_logger
from .pages import PagesUnstable
from .records.files import FileState, StoredFile
from .records.packages import PackageRecord

log = get_logger()


class DeletionRepository(Protocol):
    """`registry_shared.adapters.deletion.MongoDeletionRepository`."""

    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None: ...
    async def files(self, project_id: int, package_id: int,
                    states: Sequence[FileState] = (FileState.INSTALLABLE,)) -> list[StoredFile]: ...
    async def mark_deleting(self, file_id: int, project_id: int) -> None: ...
    async def remove_file(self, file_id: int) -> None: ...
    async def drop_package_if_empty(self, package: PackageRecord) -> bool: ...


class PageRebuilder(Protocol):
    """`registry_shared.pages.PageBuilder`."""

    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]: ...


class Publisher(Protocol):
    """`registry_shared.replicas.Announcer`."""

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


RebuiltHook = Callable[[list[Scope], str], object]  # (scopes rebuilt, name): drop this process's cached pages


class PackageDeletion:
    def __init__(self, repo: DeletionRepository, pages: PageRebuilder, publisher: Publisher,
                 on_rebuilt: RebuiltHook | None = None) -> None:
        self.repo = repo
        self.pages = pages
        self.publisher = publisher
        self.on_rebuilt = on_rebuilt

    async def delete_package(self, project: dict[str, Any], package_id: int, correlation_id: str | None, *,
                             actor: dict[str, object] | None = None, ip_address: str = "") -> None:
        """The package and every file of it; 404 when the project has no such package. `actor` and
        `ip_address` go into the audit record."""
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
        """One file of the package; the package goes with its last file."""
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
        if self.on_rebuilt is not None:
            self.on_rebuilt(scopes, name)
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
