"""The upload use case against fakes of its ports (upload_api.ports): every branch of authorize, reserve,
store, publish and verdict, with no server. The integration tests run the same paths on real servers."""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry_shared.domain.access import AccessFacts, Principal, PrincipalKind, Role, Visibility
from registry_shared.errors import (
    BadRequest,
    DomainError,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UploadRejected,
    ValidationFailed,
)
from registry_shared.events import DistributionIndexed, DistributionRejected, DistributionStored, Event
from registry_shared.inspection import InvalidDistribution
from registry_shared.records.files import StoredFile
from upload_api.ports import StoredBlob, Verdict
from upload_api.service import UploadRequest, UploadResult, UploadService

FILENAME = "demo-1.0-py3-none-any.whl"
DATA = b"wheel bytes"
DEVELOPER = Principal(kind=PrincipalKind.USER, user_id=7, scopes=frozenset({"api"}), credential_id=1)
PROJECT = {"_id": 3, "path": "team/app", "visibility": "private"}


class FakeContent:
    def __init__(self, data: bytes = DATA, filename: str = FILENAME, end_error: DomainError | None = None) -> None:
        self._data, self.filename, self.end_error = data, filename, end_error
        self.finished = False

    async def read(self, size: int) -> bytes:
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk

    async def drain(self, limit: int | None = None) -> bool:
        self._data = b""
        return True

    async def finish(self) -> None:
        self.finished = True
        if self.end_error is not None:
            raise self.end_error


@dataclass
class FakeAccess:
    project: dict[str, Any] | None = field(default_factory=lambda: dict(PROJECT))
    principal: Principal | Exception = DEVELOPER
    role: Role = Role.DEVELOPER

    async def find_project(self, ref: str) -> dict[str, Any] | None:
        return self.project

    async def authenticate(self, username: str | None, password: str | None) -> Principal:
        if isinstance(self.principal, Exception):
            raise self.principal
        return self.principal

    async def project_facts(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        return AccessFacts(visibility=Visibility.PRIVATE, role=self.role)


class FakeReservations:
    """An in-memory `distributions` collection with its unique (project, filename): it keeps the stored
    documents and answers with the models, as PackageRepository does."""

    def __init__(self) -> None:
        self.docs: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.fail_mark_stored: Exception | None = None

    async def reserve(self, file: StoredFile, lease: float) -> tuple[bool, StoredFile]:
        for existing in self.docs.values():
            if (existing["project_id"], existing["filename"]) == (file.project_id, file.filename):
                return False, StoredFile.from_doc(existing)
        self.next_id += 1
        now = datetime.now(UTC)
        stored = {**file.to_doc(), "_id": self.next_id, "state": "uploading", "created_at": now,
                  "lease_until": now + timedelta(seconds=lease)}
        self.docs[self.next_id] = stored
        return True, StoredFile.from_doc(stored)

    async def renew_lease(self, file_id: int, upload_id: str, lease: float) -> bool:
        return file_id in self.docs

    async def reclaim(self, file: StoredFile) -> bool:
        return self.docs.pop(file.id, None) is not None

    async def release(self, file_id: int, upload_id: str | None = None) -> bool:
        doc = self.docs.get(file_id)
        if doc is None or doc["state"] == "installable":
            return False
        del self.docs[file_id]
        return True

    async def mark_stored(self, file_id: int, upload_id: str, *, size: int, sha256: str, md5: str,
                          blake2_256: str) -> bool:
        if self.fail_mark_stored is not None:
            raise self.fail_mark_stored
        doc = self.docs.get(file_id)
        if doc is None or doc["upload_id"] != upload_id:
            return False
        doc.update(size=size, sha256=sha256, md5=md5, blake2_256=blake2_256, state="processing")
        return True

    async def get_file(self, file_id: int) -> StoredFile | None:
        doc = self.docs.get(file_id)
        return StoredFile.from_doc(doc) if doc is not None else None


class FakeBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def _read_all(self, content: Any) -> bytes:
        data = b""
        while chunk := await content.read(4):
            data += chunk
        return data

    async def put(self, key: str, content: Any, limit: int, inspector: Any) -> StoredBlob:
        data = await self._read_all(content)
        if inspector is not None:
            inspector.feed(data)
            metadata = inspector.finish()
        self.objects[key] = data
        return _blob(data, metadata if inspector is not None else None)

    async def digest(self, content: Any, limit: int) -> StoredBlob:
        return _blob(await self._read_all(content))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def _blob(data: bytes, metadata: bytes | None = None) -> StoredBlob:
    return StoredBlob(len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(),
                      hashlib.blake2b(data, digest_size=32).hexdigest(), metadata)


class FakeVerdicts:
    reply_to = "replica-1"
    answers_to = "replica-1-queue"

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Verdict]] = {}

    def expect(self, upload_id: str) -> asyncio.Future[Verdict]:
        self.waiting[upload_id] = asyncio.get_running_loop().create_future()
        return self.waiting[upload_id]

    def forget(self, upload_id: str) -> None:
        self.waiting.pop(upload_id, None)


class FakeWorker:
    """The `Publisher` port: records events and answers each `distribution.stored` with a chosen verdict."""

    def __init__(self, verdicts: FakeVerdicts, reservations: FakeReservations) -> None:
        self.verdicts, self.reservations = verdicts, reservations
        self.events: list[Event] = []
        self.answer: str | None = "indexed"  # "indexed", "rejected" or None (silent)
        self.fail: Exception | None = None

    async def publish(self, event: Event, correlation_id: str | None) -> None:
        if self.fail is not None:
            raise self.fail
        self.events.append(event)
        assert isinstance(event, DistributionStored)
        future = self.verdicts.waiting.get(event.upload_id)
        if self.answer == "indexed":
            self.reservations.docs[event.file_id]["state"] = "installable"
            future.set_result(DistributionIndexed(file_id=event.file_id, project_id=event.project_id,
                                                  filename=event.filename, upload_id=event.upload_id))
        elif self.answer == "rejected":
            self.reservations.docs.pop(event.file_id)
            future.set_result(DistributionRejected(file_id=event.file_id, project_id=event.project_id,
                                                   filename=event.filename, upload_id=event.upload_id,
                                                   reason="Invalid distribution file: missing PKG-INFO"))


@dataclass
class World:
    access: FakeAccess
    reservations: FakeReservations
    blobs: FakeBlobs
    worker: FakeWorker
    service: UploadService

    async def upload(self, content: FakeContent | None = None, **fields: str) -> UploadResult:
        form = {"name": "demo", "version": "1.0", **fields}
        return await self.service.upload(UploadRequest("3", "__token__", "secret", "cid", form,
                                                       content or FakeContent()))


@pytest.fixture
def world() -> World:
    access, reservations, blobs, verdicts = FakeAccess(), FakeReservations(), FakeBlobs(), FakeVerdicts()
    worker = FakeWorker(verdicts, reservations)
    service = UploadService(access, reservations, blobs, worker, verdicts, max_size=1000, verdict_timeout=0.2,
                            lease=30)
    return World(access, reservations, blobs, worker, service)


async def test_an_upload_is_stored_published_and_created(world: World) -> None:
    assert await world.upload(sha256_digest=hashlib.sha256(DATA).hexdigest()) is UploadResult.CREATED
    [event] = world.worker.events
    assert isinstance(event, DistributionStored)
    assert (event.filename, event.size, event.sha256) == (FILENAME, len(DATA), hashlib.sha256(DATA).hexdigest())
    assert list(world.blobs.objects.values()) == [DATA]
    [doc] = world.reservations.docs.values()
    assert doc["state"] == "installable" and doc["name"] == "demo"


async def test_an_unknown_project_is_404_before_credentials(world: World) -> None:
    world.access.project, world.access.principal = None, Unauthorized()
    with pytest.raises(NotFound):
        await world.upload()


@pytest.mark.parametrize(("role", "error"), [(Role.REPORTER, Forbidden), (Role.NONE, NotFound)])
async def test_a_caller_without_upload_rights_is_refused(world: World, role: Role, error: type) -> None:
    world.access.role = role
    with pytest.raises(error):
        await world.upload()
    assert world.blobs.objects == {} and world.reservations.docs == {}


async def test_a_digest_mismatch_keeps_nothing(world: World) -> None:
    with pytest.raises(UploadRejected) as info:
        await world.upload(md5_digest="0" * 32)
    assert info.value.body() == {
        "message": "400 Bad request - The digest supplied does not match a digest calculated from the uploaded file."}
    # Nothing kept; only the audit fact of the refusal (a verdict addressed to no replica) goes out.
    assert world.blobs.objects == {} and world.reservations.docs == {}
    assert [(e.kind, e.reason) for e in world.worker.events] == [("distribution.rejected", info.value.reason)]


async def test_a_malformed_end_of_the_body_keeps_nothing(world: World) -> None:
    with pytest.raises(BadRequest):
        await world.upload(FakeContent(end_error=BadRequest("malformed multipart body")))
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


async def test_the_database_failing_at_mark_stored_is_undone(world: World) -> None:
    world.reservations.fail_mark_stored = ConnectionError("down")
    with pytest.raises(ServiceUnavailable) as info:
        await world.upload()
    assert info.value.headers == {"Retry-After": "5"}
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


async def test_the_broker_refusing_is_undone(world: World) -> None:
    world.worker.fail = ConnectionError("no confirm")
    with pytest.raises(ServiceUnavailable):
        await world.upload()
    assert world.blobs.objects == {} and world.reservations.docs == {}


async def test_no_verdict_in_time_is_accepted(world: World) -> None:
    world.worker.answer = None
    assert await world.upload() is UploadResult.ACCEPTED
    [doc] = world.reservations.docs.values()
    assert doc["state"] == "processing"


async def test_the_worker_s_rejection_reaches_the_uploader(world: World) -> None:
    world.worker.answer = "rejected"
    with pytest.raises(UploadRejected) as info:
        await world.upload()
    assert info.value.reason == "Invalid distribution file: missing PKG-INFO"


async def test_an_identical_reupload_is_created_without_storing_again(world: World) -> None:
    assert await world.upload() is UploadResult.CREATED
    objects = dict(world.blobs.objects)
    assert await world.upload() is UploadResult.CREATED
    assert world.blobs.objects == objects and len(world.worker.events) == 1


async def test_other_bytes_under_a_taken_name_are_refused(world: World) -> None:
    assert await world.upload() is UploadResult.CREATED
    with pytest.raises(ValidationFailed) as info:
        await world.upload(FakeContent(b"other bytes"))
    assert info.value.body() == {"message": "400 Bad request - Validation failed: File name has already been taken"}


async def test_an_abandoned_reservation_is_reclaimed(world: World) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    world.reservations.docs[1] = {"_id": 1, "project_id": 3, "filename": FILENAME, "upload_id": "gone",
                                  "object_key": "files/3/gone/x", "state": "uploading", "lease_until": past}
    world.blobs.objects["files/3/gone/x"] = b"partial"
    assert await world.upload() is UploadResult.CREATED
    assert 1 not in world.reservations.docs and "files/3/gone/x" not in world.blobs.objects


class RefusingInspector:
    def feed(self, chunk: bytes) -> None:
        pass

    def finish(self) -> bytes:
        raise InvalidDistribution("member '../x' contains '..'")

    def abort(self) -> None:
        pass


async def test_an_inspector_s_refusal_is_a_400_and_keeps_nothing(world: World) -> None:
    world.service.inspector = lambda *_args: RefusingInspector()
    with pytest.raises(UploadRejected) as info:
        await world.upload()
    assert info.value.reason == "Invalid distribution file: member '../x' contains '..'"
    assert world.reservations.docs == {}
    [rejected] = world.worker.events
    assert isinstance(rejected, DistributionRejected)
    assert (rejected.reason, rejected.name, rejected.version) == (info.value.reason, "demo", "1.0")


async def test_inspected_metadata_travels_in_the_event(world: World) -> None:
    class Accepting(RefusingInspector):
        def finish(self) -> bytes:
            return b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"

    world.service.inspector = lambda *_args: Accepting()
    assert await world.upload() is UploadResult.CREATED
    [event] = world.worker.events
    assert isinstance(event, DistributionStored)
    assert event.inspected and event.core_metadata == b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"

