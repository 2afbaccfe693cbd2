"""E13's deletion order (index_api.management) with fakes of its own ports: what is done before the 204,
and what a failure halfway leaves (files hidden as `deleting`, nothing removed, a 503 to retry)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from index_api.cache import PageCache
from index_api.management import PackageManagement
from registry_shared.errors import NotFound, ServiceUnavailable
from registry_shared.events import Event, FileDeleted, IndexChanged, PackageDeleted, Scope
from registry_shared.pages import PagesUnstable
from registry_shared.records.files import StoredFile
from registry_shared.records.packages import PackageRecord

PROJECT = {"_id": 7, "path": "acme/api", "ancestor_ids": [1, 2]}
PACKAGE = {"_id": 40, "project_id": 7, "name": "demo", "version": "1"}
SCOPES = [Scope(kind="project", id=7), Scope(kind="group", id=1), Scope(kind="group", id=2)]


class FakeRepository:
    """Keeps the stored documents; answers with the models, as MongoManagementRepository does."""

    def __init__(self) -> None:
        self.docs = {file_id: {"_id": file_id, "package_id": 40, "object_key": key, "state": "installable"}
                     for file_id, key in ((1, "files/7/a/demo-1.0.tar.gz"), (2, "files/7/b/demo-1.0-py3-none-any.whl"))}
        self.packages = {40: dict(PACKAGE)}
        self.log: list[str] = []

    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None:
        doc = self.packages.get(package_id) if project_id == 7 else None
        return PackageRecord.from_doc(doc) if doc else None

    async def files(self, project_id: int, package_id: int, states: Sequence[str] = ("installable",)
                    ) -> list[StoredFile]:
        return [StoredFile.from_doc(f) for f in self.docs.values() if f["state"] in states]

    async def mark_deleting(self, file_id: int, project_id: int) -> None:
        self.log.append(f"mark {file_id}")
        self.docs[file_id]["state"] = "deleting"

    async def remove_file(self, file_id: int) -> None:
        self.log.append(f"remove {file_id}")
        del self.docs[file_id]

    async def drop_package_if_empty(self, package: PackageRecord) -> bool:
        if self.docs:
            return False
        self.log.append("drop package")
        del self.packages[package.id]
        return True


class FakePages:
    def __init__(self, repo: FakeRepository, unstable: bool = False) -> None:
        self.repo, self.unstable = repo, unstable

    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]:
        if self.unstable:
            raise PagesUnstable("kept moving")
        # What a rebuild sees: the files it leaves out are already marked.
        marked = sorted(f["_id"] for f in self.repo.docs.values() if f["state"] == "deleting")
        self.repo.log.append(f"rebuild {marked}")
        return SCOPES


class FakePublisher:
    def __init__(self, repo: FakeRepository, fail_on: str | None = None) -> None:
        self.repo, self.fail_on = repo, fail_on
        self.events: list[Event] = []

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None:
        if event.kind == self.fail_on:
            raise ConnectionError("broker gone")
        self.repo.log.append(f"publish {event.kind}")
        self.events.append(event)


def management(repo: FakeRepository, *, unstable: bool = False, fail_on: str | None = None
               ) -> tuple[PackageManagement, FakePublisher]:
    publisher = FakePublisher(repo, fail_on)
    return PackageManagement(repo, FakePages(repo, unstable), PageCache(), publisher), publisher  # type: ignore[arg-type]


async def test_a_package_deletion_hides_then_announces_then_removes() -> None:
    repo = FakeRepository()
    service, publisher = management(repo)
    actor = {"principal": "user", "user_id": 3, "credential_id": 9}
    await service.delete_package(PROJECT, 40, "corr", actor=actor, ip_address="192.0.2.1")
    # The audit fact goes last, once the deletion holds (SPEC §10: `package_deleted`).
    assert repo.log == ["mark 1", "mark 2", "rebuild [1, 2]", "publish index.changed", "publish file.deleted",
                        "publish file.deleted", "remove 1", "remove 2", "drop package", "publish package.deleted"]
    *events, recorded = publisher.events
    assert recorded == PackageDeleted(project_id=7, package_id=40, name=recorded.name, version=recorded.version,
                                      filenames=recorded.filenames, whole_package=True, actor=actor,
                                      ip_address="192.0.2.1")
    assert len(recorded.filenames) == 2
    changed, *deleted = events
    assert changed == IndexChanged(scopes=SCOPES, names=["demo"])
    assert deleted == [FileDeleted(file_id=1, project_id=7, object_keys=["files/7/a/demo-1.0.tar.gz"]),
                       FileDeleted(file_id=2, project_id=7, object_keys=["files/7/b/demo-1.0-py3-none-any.whl"])]


async def test_a_file_deletion_keeps_the_package_of_the_other_files() -> None:
    repo = FakeRepository()
    service, _publisher = management(repo)
    await service.delete_file(PROJECT, 40, 2, None)
    assert repo.log == ["mark 2", "rebuild [2]", "publish index.changed", "publish file.deleted", "remove 2",
                        "publish package.deleted"]
    assert isinstance(_publisher.events[-1], PackageDeleted) and not _publisher.events[-1].whole_package
    assert 40 in repo.packages and list(repo.docs) == [1]


@pytest.mark.parametrize("fail_on", ["index.changed", "file.deleted"])
async def test_a_broker_failure_is_503_and_leaves_the_files_hidden_for_the_retry(fail_on: str) -> None:
    repo = FakeRepository()
    service, _publisher = management(repo, fail_on=fail_on)
    with pytest.raises(ServiceUnavailable):
        await service.delete_package(PROJECT, 40, None)
    assert [f["state"] for f in repo.docs.values()] == ["deleting", "deleting"]
    assert not any(entry.startswith("remove") for entry in repo.log)

    retry, publisher = management(repo)  # the broker is back: a retried DELETE finds the marked files
    await retry.delete_package(PROJECT, 40, None)
    assert repo.docs == {} and repo.packages == {}
    assert [e.kind for e in publisher.events] == ["index.changed", "file.deleted", "file.deleted", "package.deleted"]


async def test_pages_that_do_not_settle_are_503_with_nothing_removed() -> None:
    repo = FakeRepository()
    service, publisher = management(repo, unstable=True)
    with pytest.raises(ServiceUnavailable):
        await service.delete_file(PROJECT, 40, 1, None)
    assert publisher.events == [] and 1 in repo.docs


@pytest.mark.parametrize(("package_id", "file_id"), [(41, None), (41, 1), (40, 3)])
async def test_unknown_package_or_file_is_404(package_id: int, file_id: int | None) -> None:
    repo = FakeRepository()
    service, publisher = management(repo)
    with pytest.raises(NotFound):
        if file_id is None:
            await service.delete_package(PROJECT, package_id, None)
        else:
            await service.delete_file(PROJECT, package_id, file_id, None)
    assert repo.log == [] and publisher.events == []
