"""The indexing use cases, with fakes of the worker's own ports (no servers)."""
from __future__ import annotations

import time
from typing import Any

import pytest

from metadata_worker.inspect import Expected, Inspection, InvalidDistribution
from metadata_worker.service import FileNotReady, IndexingService, Outcome
from registry_shared.domain.metadata import parse_core_metadata
from registry_shared.events import (
    DistributionIndexed,
    DistributionRejected,
    DistributionStored,
    FileDeleted,
    FormMetadata,
    IndexChanged,
    Scope,
)
from registry_shared.records.files import IndexedFields, StoredFile
from registry_shared.records.packages import PackageRecord
from registry_shared.replicas import Awaited
from tests.unit.worker.worker_archives import core_metadata

pytestmark = pytest.mark.asyncio

SCOPES = [Scope(kind="project", id=5), Scope(kind="group", id=2)]


class FakeFiles:
    """Keeps the stored documents; answers with the models, as PackageRepository does."""

    def __init__(self, docs: dict[int, dict[str, Any]]) -> None:
        self.docs = docs
        self.core_metadata: dict[int, bytes] = {}
        self.packages: dict[tuple, int] = {}
        self.reads = 0  # get_file calls

    async def get_file(self, file_id: int) -> StoredFile | None:
        self.reads += 1
        doc = self.docs.get(file_id)
        return StoredFile.from_doc(doc) if doc else None

    async def release(self, file_id: int, upload_id: str | None = None) -> bool:
        """PackageRepository.release: only a reservation not installable, and the upload's if one is named."""
        doc = self.docs.get(file_id)
        if doc is None or doc["state"] == "installable" or (upload_id and doc.get("upload_id") != upload_id):
            return False
        del self.docs[file_id]
        return True

    async def mark_installable(self, file_id: int, fields: IndexedFields,
                               upload_id: str | None = None) -> StoredFile | None:
        """PackageRepository.mark_installable: the upload's reservation however far it got, else a stored file."""
        doc = self.docs.get(file_id)
        if doc is None or (doc["state"] == "deleting" if upload_id else doc["state"] == "uploading"):
            return None
        if upload_id and doc.get("upload_id") != upload_id:
            return None
        self.docs[file_id].update(fields.to_set(), state="installable")
        return StoredFile.from_doc(self.docs[file_id])

    async def put_core_metadata(self, file_id: int, data: bytes) -> None:
        self.core_metadata[file_id] = data

    async def ensure_package(self, package: PackageRecord) -> int:
        key = (package.project_id, package.name, package.version)
        return self.packages.setdefault(key, 100 + len(self.packages))


class FakeDistributions:
    def __init__(self, result: Inspection | InvalidDistribution) -> None:
        self.result = result
        self.inspected: list[tuple[str, Expected]] = []
        self.deleted: list[str] = []

    async def inspect(self, object_key: str, filename: str, expected: Expected) -> Inspection:
        self.inspected.append((object_key, expected))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def delete(self, key: str) -> None:
        self.deleted.append(key)


class FakePages:
    def __init__(self) -> None:
        self.rebuilt: list[tuple[int, list[str]]] = []
        self.files: list[StoredFile | None] = []  # the installed file handed over with each call
        self.installed_at: list[float | None] = []

    async def index_file(self, project_id: int, file_id: int, name: str, file: StoredFile | None = None,
                         announce: Any = None, installed_at: float | None = None) -> list[Scope]:
        self.rebuilt.append((project_id, [name]))
        self.files.append(file)
        self.installed_at.append(installed_at)
        if announce is not None:  # PageBuilder announces once the documents are written
            await announce(SCOPES)
        return SCOPES


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, str | None, str]] = []
        self.announced_to: list[str] = []

    async def publish(self, event, correlation_id, routing_key=None) -> None:
        self.sent.append((event, correlation_id, routing_key or event.kind))

    async def announce_to(self, event, correlation_id, answers_to) -> Awaited:
        self.sent.append((event, correlation_id, event.kind))
        self.announced_to.append(answers_to)
        return Awaited(f"change-{len(self.announced_to)}", ("ia-1", "web-1"))


def stored_doc(state: str = "processing") -> dict[str, Any]:
    return {"_id": 1, "project_id": 5, "filename": "demo_pkg-1.0.tar.gz", "state": state, "upload_id": "u1",
            "object_key": "files/5/u1/demo_pkg-1.0.tar.gz", "kind": "sdist", "name": "demo-pkg",
            "display_name": "demo_pkg", "version": "1.0", "canonical_version": "1"}


def event(reply_to: str = "replica-a") -> DistributionStored:
    return DistributionStored(
        file_id=1, project_id=5, filename="demo_pkg-1.0.tar.gz", object_key="ignored/use/the/doc", size=10,
        sha256="0" * 64, md5="0" * 32, blake2_256="0" * 64, reply_to=reply_to, upload_id="u1",
        form=FormMetadata(name="demo_pkg", version="1.0", summary="form summary", keywords="from,form",
                          description="d" * 5000),
    )


def service(files, distributions) -> tuple[IndexingService, FakePages, FakePublisher]:
    pages, publisher = FakePages(), FakePublisher()
    return IndexingService(files, distributions, pages, publisher), pages, publisher


def accepted() -> Inspection:
    data = core_metadata("demo-pkg", "1.0", description="")
    return Inspection(data, parse_core_metadata(data), "demo_pkg-1.0/PKG-INFO")


async def test_accepted_file_is_indexed_then_announced_in_order() -> None:
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(accepted())
    svc, pages, publisher = service(files, dists)
    assert await svc.distribution_stored(event(), "corr-1") is Outcome.INDEXED
    doc = files.docs[1]
    assert dists.inspected == [("files/5/u1/demo_pkg-1.0.tar.gz", Expected("demo-pkg", "1", "demo_pkg", "1.0"))]
    assert doc["state"] == "installable"
    assert doc["summary"] == "demo summary"  # the file's own value wins over the form's
    assert doc["keywords"] == "from,form"  # the form fills what the file lacks
    assert len(doc["description"]) == 4000 and doc["description"].endswith("...")  # truncated
    assert doc["requires_dist"] == ["requests>=2", "attrs; extra == 'x'"]
    assert doc["package_id"] == 100 and files.packages == {(5, "demo-pkg", "1"): 100}
    assert files.core_metadata[1] == accepted().metadata_bytes
    assert len(doc["metadata_sha256"]) == 64
    assert pages.rebuilt == [(5, ["demo-pkg"])]
    # The pages get the file as marking it installable returned it: they need not read it again.
    [installed] = pages.files
    assert installed is not None and installed.state == "installable"
    assert installed.metadata_sha256 == doc["metadata_sha256"]
    # and when it began to be made installable: documents remembered from before need no re-read after
    [installed_at] = pages.installed_at
    assert installed_at is not None and installed_at <= time.monotonic()
    (changed, cid1, key1), (verdict, cid2, key2) = publisher.sent
    assert isinstance(changed, IndexChanged) and changed.scopes == SCOPES and changed.names == ["demo-pkg"]
    assert key1 == "index.changed"
    assert isinstance(verdict, DistributionIndexed) and verdict.upload_id == "u1"
    assert key2 == "distribution.indexed.replica-a"
    assert cid1 == cid2 == "corr-1"


async def test_a_file_inspected_at_the_edge_is_indexed_from_its_event_alone() -> None:
    """upload-api sent the core metadata it extracted while the bytes streamed: nothing is read from S3."""
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(InvalidDistribution("must not be asked"))
    svc, _pages, publisher = service(files, dists)
    edge = event().model_copy(update={"inspected": True, "core_metadata": accepted().metadata_bytes})
    assert await svc.distribution_stored(edge, "corr-1") is Outcome.INDEXED
    assert dists.inspected == []
    assert files.docs[1]["state"] == "installable" and files.core_metadata[1] == accepted().metadata_bytes
    assert isinstance(publisher.sent[-1][0], DistributionIndexed)


async def test_edge_metadata_that_disagrees_with_the_file_name_is_still_refused() -> None:
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(accepted())
    svc, _pages, publisher = service(files, dists)
    other = core_metadata("other", "1.0", description="")
    edge = event().model_copy(update={"inspected": True, "core_metadata": other})
    assert await svc.distribution_stored(edge, "corr-1") is Outcome.REJECTED
    assert dists.inspected == [] and files.docs == {}
    assert "does not match the file name" in publisher.sent[-1][0].reason


def first_event() -> DistributionStored:
    """As upload-api publishes it: with the reservation's names, so a first delivery reads nothing."""
    doc = stored_doc()
    return event().model_copy(update={
        "object_key": doc["object_key"], "name": doc["name"], "display_name": doc["display_name"],
        "version": doc["version"], "canonical_version": doc["canonical_version"], "file_kind": doc["kind"]})


async def test_a_first_delivery_indexes_from_the_message_without_reading_the_file() -> None:
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(accepted())
    svc, pages, publisher = service(files, dists)
    assert await svc.distribution_stored(first_event(), "corr-1", first_delivery=True) is Outcome.INDEXED
    assert files.reads == 0
    assert dists.inspected == [("files/5/u1/demo_pkg-1.0.tar.gz", Expected("demo-pkg", "1", "demo_pkg", "1.0"))]
    assert files.docs[1]["state"] == "installable" and pages.rebuilt == [(5, ["demo-pkg"])]
    verdict = publisher.sent[-1][0]
    # The package the file now belongs to, for the audit record (the message knew none).
    assert isinstance(verdict, DistributionIndexed) and verdict.package_id == files.docs[1]["package_id"] == 100


async def test_the_uploading_replica_awaits_the_replicas_the_verdict_names() -> None:
    """With the uploader's queue in the message, the replicas answer it; the verdict says whom to wait for
    (the last announcement's) and goes out without the worker waiting."""
    files = FakeFiles({1: stored_doc()})
    svc, _pages, publisher = service(files, FakeDistributions(accepted()))
    message = first_event().model_copy(update={"answers_to": "amq.gen-uploader"})
    assert await svc.distribution_stored(message, "corr-1", first_delivery=True) is Outcome.INDEXED
    assert publisher.announced_to == ["amq.gen-uploader"]
    (changed, _c1, key1), (verdict, _c2, key2) = publisher.sent
    assert isinstance(changed, IndexChanged) and key1 == "index.changed"
    assert isinstance(verdict, DistributionIndexed) and key2 == "distribution.indexed.replica-a"
    assert (verdict.applied_id, verdict.awaited) == ("change-1", ("ia-1", "web-1"))


async def test_a_first_delivery_whose_file_is_gone_is_skipped() -> None:
    """Marking it installable finds it missing (released meanwhile): nothing is announced."""
    files = FakeFiles({})
    svc, pages, publisher = service(files, FakeDistributions(accepted()))
    assert await svc.distribution_stored(first_event(), "c", first_delivery=True) is Outcome.SKIPPED
    assert publisher.sent == [] and pages.rebuilt == []


@pytest.mark.parametrize("first_delivery", [False, True])
async def test_a_message_without_the_names_or_delivered_again_reads_the_file(first_delivery: bool) -> None:
    """An older publisher's message (no names), or any redelivery: the stored document decides."""
    files = FakeFiles({1: {**stored_doc("installable"), "metadata_sha256": "m"}})
    svc, _pages, publisher = service(files, FakeDistributions(accepted()))
    message = event() if first_delivery else first_event()
    assert await svc.distribution_stored(message, "c", first_delivery=first_delivery) is Outcome.INDEXED
    assert files.reads == 1 and files.core_metadata == {}  # only the idempotent tail ran
    assert [key for _e, _c, key in publisher.sent] == ["index.changed", "distribution.indexed.replica-a"]


async def test_rejected_file_loses_object_and_reservation() -> None:
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(InvalidDistribution("missing PKG-INFO"))
    svc, pages, publisher = service(files, dists)
    assert await svc.distribution_stored(event(reply_to=""), "corr-2") is Outcome.REJECTED
    assert files.docs == {} and files.core_metadata == {}
    assert dists.deleted == ["files/5/u1/demo_pkg-1.0.tar.gz"]
    assert pages.rebuilt == []
    [(verdict, cid, key)] = publisher.sent
    assert isinstance(verdict, DistributionRejected)
    assert verdict.reason == "Invalid distribution file: missing PKG-INFO"
    assert (cid, key) == ("corr-2", "distribution.rejected")


async def test_a_reason_with_an_undecodable_character_still_makes_a_verdict() -> None:
    # Built without the inspection's quoting: a lone surrogate (tarfile's undecodable byte) and an escape.
    bad = InvalidDistribution("member '\udcff\x1b[31m' is bad")
    files, dists = FakeFiles({1: stored_doc()}), FakeDistributions(bad)
    svc, _pages, publisher = service(files, dists)
    assert await svc.distribution_stored(event(), "c") is Outcome.REJECTED
    [(verdict, _cid, _key)] = publisher.sent
    assert verdict.reason == "Invalid distribution file: member '??[31m' is bad"
    assert DistributionRejected.model_validate_json(verdict.model_dump_json()) == verdict  # as the broker sends it


async def test_installable_file_only_reruns_the_tail() -> None:
    files = FakeFiles({1: {**stored_doc("installable"), "metadata_sha256": "m"}})
    dists = FakeDistributions(accepted())
    svc, pages, publisher = service(files, dists)
    assert await svc.distribution_stored(event(), "c") is Outcome.INDEXED
    assert dists.inspected == [] and files.core_metadata == {} and files.packages == {}
    assert pages.rebuilt == [(5, ["demo-pkg"])]
    assert [key for _e, _c, key in publisher.sent] == ["index.changed", "distribution.indexed.replica-a"]


async def test_released_reservation_is_skipped_silently() -> None:
    svc, pages, publisher = service(FakeFiles({}), FakeDistributions(accepted()))
    assert await svc.distribution_stored(event(), "c") is Outcome.SKIPPED
    assert publisher.sent == [] and pages.rebuilt == []


async def test_a_file_uploading_under_another_upload_is_a_transient_failure() -> None:
    doc = {**stored_doc("uploading"), "upload_id": "someone-else"}
    svc, _pages, publisher = service(FakeFiles({1: doc}), FakeDistributions(accepted()))
    with pytest.raises(FileNotReady):
        await svc.distribution_stored(event(), "c")
    assert publisher.sent == []


@pytest.mark.parametrize("first_delivery", [True, False])
async def test_a_file_published_while_its_upload_awaits_the_verdict_is_indexed(first_delivery: bool) -> None:
    """upload-api publishes its reservation as it stands (`uploading`, leased until the verdict): the worker
    makes it installable, with the stored bytes' size and digests from the message."""
    files = FakeFiles({1: stored_doc("uploading")})
    svc, _pages, publisher = service(files, FakeDistributions(accepted()))
    named = event().model_copy(update={"name": "demo-pkg", "display_name": "demo_pkg", "version": "1.0",
                                       "canonical_version": "1", "file_kind": "sdist"})
    assert await svc.distribution_stored(named, "c", first_delivery) is Outcome.INDEXED
    doc = files.docs[1]
    assert doc["state"] == "installable" and (doc["size"], doc["sha256"]) == (10, "0" * 64)
    assert isinstance(publisher.sent[-1][0], DistributionIndexed)


@pytest.mark.parametrize("state", ["processing", "uploading"])
async def test_abandoned_distribution_frees_its_filename(state: str) -> None:
    files, dists = FakeFiles({1: stored_doc(state)}), FakeDistributions(accepted())
    svc, _pages, publisher = service(files, dists)
    assert await svc.distribution_abandoned(event()) is True
    assert files.docs == {}
    assert dists.deleted == ["files/5/u1/demo_pkg-1.0.tar.gz"]  # the reservation's object, after it
    assert publisher.sent == []


@pytest.mark.parametrize("doc", [None, stored_doc("installable"), {**stored_doc(), "upload_id": "another upload"}])
async def test_abandoning_leaves_what_is_not_this_uploads_reservation(doc: dict[str, Any] | None) -> None:
    files = FakeFiles({1: doc} if doc else {})
    dists = FakeDistributions(accepted())
    svc, _pages, _publisher = service(files, dists)
    assert await svc.distribution_abandoned(event()) is False
    assert files.docs == ({1: doc} if doc else {}) and dists.deleted == []


async def test_file_deleted_removes_every_object() -> None:
    dists = FakeDistributions(accepted())
    svc, _pages, _publisher = service(FakeFiles({}), dists)
    outcome = await svc.file_deleted(FileDeleted(file_id=1, project_id=5, object_keys=["a", "b"]))
    assert outcome is Outcome.DELETED and dists.deleted == ["a", "b"]
