"""The upload use case against fakes of its ports (upload_api.ports): every branch of authorize, reserve,
store, publish and verdict, with no server. The integration tests run the same paths on real servers."""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

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
from upload_api.ports import Held, StoredBlob, Verdict
from upload_api.service import UploadRequest, UploadResult, UploadService

FILENAME = "demo-1.0-py3-none-any.whl"
DATA = b"wheel bytes"
DEVELOPER = Principal(kind=PrincipalKind.USER, user_id=7, scopes=frozenset({"api"}), credential_id=1)
PROJECT = {"_id": 3, "path": "team/app", "visibility": "private"}


class FakeContent:
    def __init__(self, data: bytes = DATA, filename: str = FILENAME, end_error: DomainError | None = None,
                 stall_after: int | None = None) -> None:
        self._data, self.filename, self.end_error = data, filename, end_error
        self.finished = False
        self.read_bytes = 0  # through read(), as the store reads; drain() is not counted
        self.stall_after = stall_after  # reads then wait forever, as a client that stopped sending
        self.stalled = asyncio.Event()

    async def read(self, size: int) -> bytes:
        if self.stall_after is not None and self.read_bytes >= self.stall_after:
            self.stalled.set()
            await asyncio.Event().wait()
        chunk, self._data = self._data[:size], self._data[size:]
        self.read_bytes += len(chunk)
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
        self.marked: list[int] = []  # the files mark_stored was called for
        self.renewed: list[int] = []  # the files whose lease renew_lease was called for
        self.fail_reserve: Exception | None = None
        self.hold: asyncio.Event | None = None  # when set, reserve() waits for it: a slow database
        self.reserving = asyncio.Event()  # set when reserve() is entered

    async def reserve(self, file: StoredFile, lease: float) -> tuple[bool, StoredFile]:
        self.reserving.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_reserve is not None:
            raise self.fail_reserve
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
        self.renewed.append(file_id)
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
        self.marked.append(file_id)
        if self.fail_mark_stored is not None:
            raise self.fail_mark_stored
        doc = self.docs.get(file_id)
        if doc is None or doc["upload_id"] != upload_id or doc["state"] != "uploading":
            return False
        doc.update(size=size, sha256=sha256, md5=md5, blake2_256=blake2_256, state="processing")
        return True

    async def get_file(self, file_id: int) -> StoredFile | None:
        doc = self.docs.get(file_id)
        return StoredFile.from_doc(doc) if doc is not None else None


class FakeBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail: Exception | None = None
        self.stored = asyncio.Event()  # set once an object is stored
        self.whole_max = -1  # file parts up to this size are held whole (S3Blobs.hold); none by default
        self.putting = asyncio.Event()  # set when put_held is entered
        self.gate: asyncio.Event | None = None  # when set, put_held waits for it: a slow S3

    async def hold(self, content: Any, limit: int, inspector: Any) -> Held | Any:
        data = b""
        while len(data) <= self.whole_max and (chunk := await content.read(4)):
            data += chunk
        if len(data) > self.whole_max:
            return _Replay(data, content)
        return Held(data, _blob(data), inspector)

    async def put_held(self, key: str, held: Held) -> StoredBlob:
        """As S3Blobs: stored while judged; a refused file's object removed."""
        self.putting.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        metadata = held.inspector.inspect(held.data) if held.inspector is not None else None  # may refuse
        self.objects[key] = held.data
        self.stored.set()
        return _blob(held.data, metadata)

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
        if self.fail is not None:
            raise self.fail
        self.objects[key] = data
        self.stored.set()
        return _blob(data, metadata if inspector is not None else None)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


class _Replay:
    """A content with what `hold` read of it put back in front."""

    def __init__(self, head: bytes, content: Any) -> None:
        self.head, self.content, self.filename = head, content, content.filename

    async def read(self, size: int) -> bytes:
        if self.head:
            chunk, self.head = self.head[:size], self.head[size:]
            return chunk
        return await self.content.read(size)

    async def drain(self, limit: int | None = None) -> bool:
        self.head = b""
        return await self.content.drain(limit)

    async def finish(self) -> None:
        await self.content.finish()


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
        if self.answer == "indexed":  # as the metadata-worker marks it: its stored bytes from the message
            self.reservations.docs[event.file_id].update(state="installable", size=event.size, sha256=event.sha256,
                                                         md5=event.md5, blake2_256=event.blake2_256)
            future.set_result(DistributionIndexed(file_id=event.file_id, project_id=event.project_id,
                                                  filename=event.filename, upload_id=event.upload_id))
        elif self.answer == "rejected":
            self.reservations.docs.pop(event.file_id)
            future.set_result(DistributionRejected(file_id=event.file_id, project_id=event.project_id,
                                                   filename=event.filename, upload_id=event.upload_id,
                                                   reason="Invalid distribution file: missing PKG-INFO"))


STREAMED = pytest.mark.parametrize("world", ["streamed"], indirect=True)


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


@pytest.fixture(params=["streamed", "held"])
def world(request: pytest.FixtureRequest) -> World:
    """Each case twice: streamed (the reservation alongside the store), and held whole (S3Blobs.hold: judged
    first, then reserved as stored while its bytes are stored). `@STREAMED` pins a case to the first."""
    access, reservations, blobs, verdicts = FakeAccess(), FakeReservations(), FakeBlobs(), FakeVerdicts()
    if request.param == "held":
        blobs.whole_max = 1000
    worker = FakeWorker(verdicts, reservations)
    # The store reads 4 bytes at a time (FakeBlobs): past 64 it waits for the reservation.
    service = UploadService(access, reservations, blobs, worker, verdicts, max_size=1000, verdict_timeout=0.2,
                            lease=30, reserve_ahead=64)
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


async def test_the_database_failing_when_the_upload_stops_waiting_still_answers_202(world: World) -> None:
    """No verdict in time, and marking the file stored fails: it is queued all the same (the worker may yet
    index it); logged."""
    world.worker.answer = None
    world.reservations.fail_mark_stored = ConnectionError("down")
    with capture_logs() as logs:
        assert await world.upload() is UploadResult.ACCEPTED
    assert [e["event"] for e in logs if e["event"] == "mark_stored_failed"] == ["mark_stored_failed"]
    assert len(world.blobs.objects) == 1 and len(world.worker.events) == 1


async def test_the_broker_refusing_is_undone(world: World) -> None:
    world.worker.fail = ConnectionError("no confirm")
    with pytest.raises(ServiceUnavailable):
        await world.upload()
    assert world.blobs.objects == {} and world.reservations.docs == {}


async def test_no_verdict_in_time_is_accepted(world: World) -> None:
    """Published while `uploading`, no second write before it; marked stored (`processing`, never reclaimed)
    only when the upload stops waiting."""
    world.worker.answer = None
    assert await world.upload() is UploadResult.ACCEPTED
    [doc] = world.reservations.docs.values()
    assert doc["state"] == "processing" and doc["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert world.reservations.marked == [doc["_id"]]


async def test_an_upload_indexed_at_the_moment_it_stops_waiting_is_created(world: World) -> None:
    world.worker.answer = None
    mark_stored = world.reservations.mark_stored

    async def indexed_first(file_id: int, upload_id: str, **digests: Any) -> bool:
        world.reservations.docs[file_id]["state"] = "installable"  # the worker came first
        return await mark_stored(file_id, upload_id, **digests)

    world.reservations.mark_stored = indexed_first  # type: ignore[method-assign]
    assert await world.upload() is UploadResult.CREATED


async def test_a_published_reservation_s_lease_is_renewed_while_the_verdict_is_awaited(world: World) -> None:
    world.worker.answer = None
    world.service.lease = 0.03  # renewed every 10 ms; the verdict awaited 200 ms
    assert await world.upload() is UploadResult.ACCEPTED
    assert world.reservations.renewed  # while waiting: the name never became reclaimable


async def test_the_worker_s_rejection_reaches_the_uploader(world: World) -> None:
    world.worker.answer = "rejected"
    with pytest.raises(UploadRejected) as info:
        await world.upload()
    assert info.value.reason == "Invalid distribution file: missing PKG-INFO"


async def test_an_identical_reupload_is_created_and_only_the_first_copy_stays(world: World) -> None:
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
    def inspect(self, data: bytes) -> bytes:
        self.feed(data)
        return self.finish()

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



# The reservation runs alongside the store (DESIGN.md "Upload"): the interleavings.

LARGE = bytes(range(256)) * 2  # 512 bytes: past reserve_ahead, so the store waits for the reservation


def _installable(world: World, data: bytes) -> None:
    """`FILENAME` already installable with `data`'s digest, uploaded by someone else."""
    world.reservations.docs[1] = {"_id": 1, "project_id": 3, "filename": FILENAME, "upload_id": "first",
                                  "object_key": "files/3/first/x", "state": "installable",
                                  "sha256": hashlib.sha256(data).hexdigest()}
    world.blobs.objects["files/3/first/x"] = data


@STREAMED
async def test_a_reservation_slower_than_the_store_still_publishes(world: World) -> None:
    world.reservations.hold = asyncio.Event()
    with capture_logs() as logs:
        upload = asyncio.create_task(world.upload())
        await world.blobs.stored.wait()
        # The bytes are in S3 while the insert is still on its way; nothing is published before it lands.
        assert list(world.blobs.objects.values()) == [DATA] and world.reservations.docs == {}
        assert world.worker.events == []
        world.reservations.hold.set()
        assert await upload is UploadResult.CREATED
    [doc] = world.reservations.docs.values()
    assert doc["state"] == "installable" and world.blobs.objects == {doc["object_key"]: DATA}
    [stored] = [line for line in logs if line["event"] == "distribution_stored"]
    assert {"auth", "store", "reserve", "reserve_wait", "publish"} <= set(stored["ms"])


@STREAMED
async def test_a_reservation_failing_after_the_store_finished_keeps_nothing(world: World) -> None:
    world.reservations.hold = asyncio.Event()
    world.reservations.fail_reserve = ConnectionError("database down")
    upload = asyncio.create_task(world.upload())
    await world.blobs.stored.wait()
    world.reservations.hold.set()
    # The dependency's own error stands: the edge answers 503 with Retry-After, as before.
    with pytest.raises(ConnectionError):
        await upload
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


@STREAMED
async def test_a_large_body_waits_for_a_failing_reservation_and_stops(world: World) -> None:
    world.reservations.fail_reserve = ConnectionError("database down")
    content = FakeContent(LARGE)
    with pytest.raises(ConnectionError):
        await world.upload(content)
    assert content.read_bytes <= 64 + 4  # not the whole body
    assert world.blobs.objects == {} and world.reservations.docs == {}


@STREAMED
async def test_a_name_taken_by_other_bytes_stops_a_large_body_early(world: World) -> None:
    _installable(world, b"the first upload")
    content = FakeContent(LARGE)
    with pytest.raises(ValidationFailed) as info:
        await world.upload(content, sha256_digest=hashlib.sha256(LARGE).hexdigest())
    assert info.value.reason == "Validation failed: File name has already been taken"
    assert content.read_bytes <= 64 + 4 and await content.read(1) == b""  # stopped, then drained
    assert world.blobs.objects == {"files/3/first/x": b"the first upload"} and list(world.reservations.docs) == [1]


@STREAMED
async def test_a_name_taken_by_other_bytes_without_a_declared_digest_is_refused(world: World) -> None:
    _installable(world, b"the first upload")
    with pytest.raises(ValidationFailed) as info:
        await world.upload(FakeContent(LARGE))
    assert info.value.reason == "Validation failed: File name has already been taken"
    assert world.blobs.objects == {"files/3/first/x": b"the first upload"} and list(world.reservations.docs) == [1]


@STREAMED
async def test_an_identical_large_reupload_is_created_and_its_copy_removed(world: World) -> None:
    _installable(world, LARGE)
    content = FakeContent(LARGE)
    assert await world.upload(content, sha256_digest=hashlib.sha256(LARGE).hexdigest()) is UploadResult.CREATED
    assert content.finished and world.worker.events == []
    assert world.blobs.objects == {"files/3/first/x": LARGE} and list(world.reservations.docs) == [1]


async def test_an_invalid_file_under_an_installable_name_is_name_taken(world: World) -> None:
    # An installable file passed inspection, so bytes the inspector refuses are other bytes.
    _installable(world, DATA)
    world.service.inspector = lambda *_args: RefusingInspector()
    with pytest.raises(ValidationFailed) as info:
        await world.upload()
    assert info.value.reason == "Validation failed: File name has already been taken"
    assert world.blobs.objects == {"files/3/first/x": DATA} and world.worker.events == []


async def test_a_holder_still_uploading_keeps_our_copy_until_its_outcome_then_removes_it(world: World) -> None:
    future = datetime.now(UTC) + timedelta(seconds=30)
    world.reservations.docs[1] = {"_id": 1, "project_id": 3, "filename": FILENAME, "upload_id": "first",
                                  "object_key": "files/3/first/x", "state": "processing", "lease_until": future,
                                  "sha256": hashlib.sha256(DATA).hexdigest()}
    # Same bytes, the holder's verdict not in within verdict_timeout: 202, and only the holder's object stays.
    assert await world.upload() is UploadResult.ACCEPTED
    assert world.blobs.objects == {} and list(world.reservations.docs) == [1] and world.worker.events == []


async def test_the_store_failing_releases_our_reservation(world: World) -> None:
    world.blobs.fail = OSError("S3 down")
    with pytest.raises(ServiceUnavailable) as info:
        await world.upload()
    assert info.value.body() == {"message": "503 Service Unavailable - object storage failed; retry"}
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


@STREAMED
@pytest.mark.parametrize("reservation_pending", [False, True])
async def test_a_cancelled_upload_leaves_neither_object_nor_reservation(world: World,
                                                                        reservation_pending: bool) -> None:
    if reservation_pending:
        world.reservations.hold = asyncio.Event()
    content = FakeContent(LARGE, stall_after=32)
    upload = asyncio.create_task(world.upload(content))
    await content.stalled.wait()
    await world.reservations.reserving.wait()
    upload.cancel()
    if world.reservations.hold is not None:
        # The insert lands after the cancellation: it is awaited, then released, not orphaned.
        world.reservations.hold.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


# Held whole (small files): judged before anything is written, then reserved as stored.
HELD = pytest.mark.parametrize("world", ["held"], indirect=True)


@HELD
async def test_a_held_file_is_reserved_with_its_digests_and_published_in_one_write(world: World) -> None:
    reserved: list[StoredFile] = []
    reserve = world.reservations.reserve

    async def recording(file: StoredFile, lease: float) -> tuple[bool, StoredFile]:
        reserved.append(file)
        return await reserve(file, lease)

    world.reservations.reserve = recording  # type: ignore[method-assign]
    assert await world.upload() is UploadResult.CREATED
    assert world.reservations.marked == []  # one write before publishing: the reservation
    [file] = reserved
    assert (file.size, file.sha256, file.md5) == (len(DATA), hashlib.sha256(DATA).hexdigest(),
                                                  hashlib.md5(DATA).hexdigest())
    [event] = world.worker.events
    assert isinstance(event, DistributionStored) and event.sha256 == file.sha256


@HELD
async def test_a_held_file_with_a_malformed_request_is_never_stored(world: World) -> None:
    with pytest.raises(UploadRejected):
        await world.upload(md5_digest="0" * 32)
    assert not world.blobs.putting.is_set()  # refused before any byte went to S3
    assert world.blobs.objects == {} and world.reservations.docs == {}


@HELD
async def test_the_database_failing_at_a_held_file_s_reservation_keeps_nothing(world: World) -> None:
    world.reservations.fail_reserve = ConnectionError("down")
    with pytest.raises(ConnectionError):
        await world.upload()
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []


@HELD
async def test_a_held_file_cancelled_while_stored_leaves_neither_object_nor_reservation(world: World) -> None:
    world.blobs.gate = asyncio.Event()
    upload = asyncio.create_task(world.upload())
    await world.blobs.putting.wait()
    await world.reservations.reserving.wait()
    upload.cancel()
    world.blobs.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert world.blobs.objects == {} and world.reservations.docs == {} and world.worker.events == []
