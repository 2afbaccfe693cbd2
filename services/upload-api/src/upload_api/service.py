"""The upload use case (DESIGN.md "Upload"): authorize, validate, reserve while streaming, publish, await verdict.

Free of HTTP: the edge (views.py) hands it an `UploadRequest` whose file part is a `Content` (ports.py),
and maps its `UploadResult`, or the DomainError it raises, to GitLab's responses.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from registry_shared.domain.access import Principal, authorize_upload
from registry_shared.domain.filenames import check_filename_matches, parse_filename
from registry_shared.domain.names import normalize_name, validate_name
from registry_shared.domain.versions import canonical_version, validate_version
from registry_shared.errors import DomainError, NotFound, ServiceUnavailable, UploadRejected, ValidationFailed
from registry_shared.events import DistributionIndexed, DistributionRejected, DistributionStored, FormMetadata
from registry_shared.governance.protection import check_push
from registry_shared.inspection import InvalidDistribution
from registry_shared.records.files import FileState, StoredFile
from registry_shared.tasks import running

from .ports import (
    Access,
    Blobs,
    Content,
    Fields,
    Held,
    Inspector,
    Policies,
    Protection,
    Publisher,
    Reservations,
    StoredBlob,
    Verdicts,
)

log = structlog.get_logger()

DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
NAME_TAKEN = "File name has already been taken"
POLL_INTERVAL = 0.05
# Core metadata up to this size travels in `distribution.stored`; a larger one is read back by the worker.
MAX_EVENT_METADATA = 256 * 1024

Owned = tuple[StoredFile, StoredBlob]
# The reservation task: (True, ours) or (False, the document holding the name).
Reservation = asyncio.Task[tuple[bool, StoredFile]]
# What streaming the file part gave: the stored blob, or why it failed (judged once the reservation is known).
Streamed = StoredBlob | Exception
# Bytes of the file part streamed before the reservation must be known: one S3 part (SMALL_OBJECT), so a
# file that small is one PUT whatever the reservation's pace.
RESERVE_AHEAD = 1024 * 1024
# Builds the inspector that judges a file's bytes as they stream: (filename, name, canonical version,
# display name, display version) -> Inspector; None leaves the bytes to the worker alone.
InspectorFactory = Callable[[str, str, str, str, str], Inspector]


class UploadResult(StrEnum):
    CREATED = "created"  # indexed: installable now
    ACCEPTED = "accepted"  # stored, the worker's verdict is still to come


@dataclass(frozen=True)
class UploadRequest:
    project_ref: str
    username: str | None
    password: str | None
    correlation_id: str
    fields: Fields
    content: Content
    ip_address: str = ""

    def get(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if value not in (None, "") else None


class UploadService:
    def __init__(self, access: Access, reservations: Reservations, blobs: Blobs, publisher: Publisher,
                 verdicts: Verdicts, *, max_size: int, verdict_timeout: float, lease: float = 30.0,
                 inspector: InspectorFactory | None = None, policies: Policies | None = None,
                 protection: Protection | None = None, reserve_ahead: int = RESERVE_AHEAD) -> None:
        self.access = access
        self.reservations = reservations
        self.blobs = blobs
        self.publisher = publisher
        self.verdicts = verdicts
        self.max_size = max_size
        self.verdict_timeout = verdict_timeout
        self.lease = lease
        self.inspector = inspector
        self.policies = policies
        self.protection = protection
        self.reserve_ahead = reserve_ahead

    async def authorize(self, request: UploadRequest) -> tuple[dict[str, Any], Principal]:
        """SPEC §3.1 upload order: unknown project 404, then 401 / 404 / 403."""
        # Looked up together; the project's absence is still reported before any credential problem.
        project, principal = await asyncio.gather(self.access.find_project(request.project_ref),
                                                  self.access.authenticate(request.username, request.password),
                                                  return_exceptions=True)
        if isinstance(project, BaseException):
            raise project
        if project is None:
            raise NotFound()
        if isinstance(principal, BaseException):
            raise principal
        authorize_upload(principal, await self.access.project_facts(principal, project))
        return project, principal

    async def upload(self, request: UploadRequest) -> UploadResult:
        lap = Laps()
        project, principal = await self.authorize(request)
        lap("auth")
        name = validate_name(request.get("name") or "")
        version = validate_version(request.get("version") or "")
        filename = request.content.filename
        parsed = parse_filename(filename)
        check_filename_matches(parsed, name, version)
        # SPEC §9 order: protection rules (403), then policy blocks (403), then package status (400).
        await self._check_protection(project, principal, name)
        if self.policies is not None:
            await self.policies.check(project, normalize_name(name), version, filename)
        upload_id = uuid.uuid4().hex
        declared = _declared_digests(request)
        reservation = StoredFile(
            id=0, project_id=project["_id"], filename=filename, upload_id=upload_id,
            object_key=f"files/{project['_id']}/{upload_id}/{filename}", kind=parsed.kind.value,
            name=normalize_name(name), display_name=name, version=version,
            canonical_version=canonical_version(version), sha256=declared.get("sha256", ""),
            uploader=principal.log_fields(), correlation_id=request.correlation_id,
        )
        inspector = self._inspector_for(reservation)  # judges the bytes held whole, or as they stream
        held = await self.blobs.hold(request.content, self.max_size, inspector)
        if isinstance(held, Held):
            stored, reserving = await self._store_held(reservation, held, request, declared, lap)
        else:
            # The reservation (one insert) runs while the bytes stream: the object key does not depend on it.
            # Past `reserve_ahead` bytes the stream waits for it, so a large body never streams on under a name
            # that other bytes hold.
            reserving = asyncio.create_task(self._reserve(reservation))
            reserving.add_done_callback(lap.took("reserve"))
            content = _AfterReservation(held, reserving, declared.get("sha256"), self.reserve_ahead)
            try:
                async with running(self._renew_once_reserved(reserving)):
                    stored = await self._stream(reservation, content, declared, inspector)
            except BaseException:
                # Cancelled (the client went away): nothing of ours stays, neither the object nor the reservation.
                await self._abandon(reserving, reservation)
                raise
        lap("store")
        owner, doc = await self._reserved(reserving, reservation)
        lap("reserve_wait")
        if owner:
            if isinstance(stored, Exception):
                raise await self._refusal(doc, stored, request)
            blob = stored
        else:
            result = await self._upload_existing_name(doc, reservation, request, declared, stored)
            if isinstance(result, UploadResult):
                return result
            doc, blob = result  # the earlier holder failed and we won the name for our copy
        return await self._publish_and_wait(doc, blob, request, lap)

    async def _store_held(self, reservation: StoredFile, held: Held, request: UploadRequest,
                          declared: dict[str, str], lap: Laps) -> tuple[Streamed, Reservation]:
        """A file held whole: its digests and the rest of the request checked before anything is written, then
        its name reserved (with its size and digests) while its bytes go to S3 and the inspector judges them.
        A refusal or a failure is returned, judged once the reservation is known, as a stream's."""
        stored: Streamed = held.blob
        try:
            _check_digests(held.blob, declared)
            await request.content.finish()
        except Exception as exc:  # noqa: BLE001 - judged once the reservation is known, as _stream's
            stored = exc
        if isinstance(stored, Exception):
            if held.inspector is not None:
                held.inspector.abort()
            reserving = asyncio.create_task(self._reserve(reservation))
            reserving.add_done_callback(lap.took("reserve"))
            return stored, reserving
        measured = dataclasses.replace(reservation, size=stored.size, sha256=stored.sha256, md5=stored.md5,
                                       blake2_256=stored.blake2_256)
        reserving = asyncio.create_task(self._reserve(measured))
        reserving.add_done_callback(lap.took("reserve"))
        try:
            stored = await self.blobs.put_held(reservation.object_key, held)
        except Exception as exc:  # noqa: BLE001 - refused, or object storage failed: nothing was kept
            return exc, reserving
        except BaseException:
            await self._abandon(reserving, reservation)
            raise
        return stored, reserving

    async def _check_protection(self, project: dict[str, Any], principal: Principal, name: str) -> None:
        """SPEC §10: 403 `Package protected.` when a rule's push level is above the caller (first of the
        403s an upload can meet: then policy blocks, then package status)."""
        rules = await self.protection.rules(project["_id"]) if self.protection is not None else []
        if rules:
            check_push(rules, name, principal, await self.access.project_facts(principal, project))

    async def _record_rejection(self, doc: StoredFile, exc: UploadRejected, request: UploadRequest) -> None:
        """The audit fact of a refused file (`package_rejected`): a verdict addressed to no replica, so only
        the audit consumer reads it. Best effort: the client's 400 does not depend on it."""
        event = DistributionRejected(file_id=doc.id, project_id=doc.project_id, filename=doc.filename,
                                     reason=exc.reason, upload_id=doc.upload_id, name=doc.display_name,
                                     version=doc.version, uploader=doc.uploader, ip_address=request.ip_address)
        try:
            await self.publisher.publish(event, request.correlation_id)
        except Exception as publish_exc:  # noqa: BLE001 - the refusal stands; only its record is lost
            log.warning("rejection_not_recorded", file_id=doc.id, error=type(publish_exc).__name__)

    async def _reserve(self, reservation: StoredFile) -> tuple[bool, StoredFile]:
        """Reserve the filename, first reclaiming a reservation whose holder is gone (its lease ran out)."""
        while True:
            owner, doc = await self.reservations.reserve(reservation, self.lease)
            if owner or not doc.abandoned():
                return owner, doc
            if await self.reservations.reclaim(doc):
                log.warning("reservation_reclaimed", file_id=doc.id, filename=doc.filename,
                            abandoned_upload=doc.upload_id)
                await self.blobs.delete(doc.object_key)

    async def _renew_once_reserved(self, reserving: Reservation) -> None:
        """Renew the reservation's lease while its bytes stream in (a 5 GB upload outlasts many leases), from
        the moment it is known to be ours."""
        await asyncio.wait([reserving])  # waits without cancelling it when the stream ends first
        owner, doc = _outcome(reserving) or (False, None)
        if owner and doc is not None:
            await self._renew(doc)

    async def _stream(self, reservation: StoredFile, content: Content, declared: dict[str, str],
                      inspector: Inspector | None) -> Streamed:
        """Stream into S3 (inspecting on the way), check the declared digests, read the body to its end.

        A failure is returned, not raised, with nothing left in S3: what it means (and which error the
        client gets) depends on whose the name turns out to be.
        """
        try:
            blob = await self.blobs.put(reservation.object_key, content, self.max_size, inspector)
        except Exception as exc:  # noqa: BLE001 - judged once the reservation is known
            return exc
        try:
            _check_digests(blob, declared)
            # The rest of the request must be well-formed before the file is kept (a second file part, a
            # cut closing boundary: 400, and the stored bytes go).
            await content.finish()
        except Exception as exc:  # noqa: BLE001 - as above
            await self._delete(reservation.object_key)
            return exc
        return blob

    async def _reserved(self, reserving: Reservation, reservation: StoredFile) -> tuple[bool, StoredFile]:
        """The reservation's outcome once the bytes are in. If it failed (the database is down) our object
        goes and its error stands: a 503, as the edge maps a dependency's failure."""
        try:
            await asyncio.wait([reserving])
            return reserving.result()
        except BaseException:
            await self._abandon(reserving, reservation)
            raise

    async def _abandon(self, reserving: Reservation, reservation: StoredFile) -> None:
        """Leave nothing of this upload: its object, and its reservation once the insert has settled (it is
        awaited rather than cancelled, so an insert the database already made is released, not orphaned)."""
        await self._delete(reservation.object_key)
        await asyncio.wait([reserving])
        owner, doc = _outcome(reserving) or (False, None)
        if owner and doc is not None:
            await self._undo(doc)

    async def _refusal(self, doc: StoredFile, failure: Exception, request: UploadRequest) -> Exception:
        """Our reservation's bytes failed to stream or were refused: release it and say why (a refused file is
        recorded as `package_rejected`; object storage failing is a 503)."""
        await self._undo(doc)
        error: Exception = failure
        if (reason := _invalid_distribution(failure)) is not None:
            error = UploadRejected(reason)
        elif not isinstance(failure, DomainError):
            log.error("object_store_failed", file_id=doc.id, error=type(failure).__name__)
            error = ServiceUnavailable("503 Service Unavailable - object storage failed; retry")
        if isinstance(error, UploadRejected):
            await self._record_rejection(doc, error, request)
        if error is not failure:
            error.__cause__ = failure
        return error

    def _inspector_for(self, doc: StoredFile) -> Inspector | None:
        if self.inspector is None:
            return None
        return self.inspector(doc.filename, doc.name, doc.canonical_version, doc.display_name, doc.version)

    async def _undo(self, doc: StoredFile) -> None:
        """Remove the object and release the reservation, as far as the dependencies allow: what cannot be
        undone now (the database is down) is an abandoned reservation, reclaimed once its lease runs out."""
        await self._delete(doc.object_key, doc.id)
        try:
            await self.reservations.release(doc.id, doc.upload_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("undo_reservation_failed", file_id=doc.id, error=type(exc).__name__,
                        reclaimable_in_s=self.lease)

    async def _delete(self, key: str, file_id: int | None = None) -> None:
        try:
            await self.blobs.delete(key)
        except Exception as exc:  # noqa: BLE001 - an orphan object blocks nothing; the reservation matters
            log.warning("undo_object_failed", file_id=file_id, object_key=key, error=type(exc).__name__)

    async def _publish_and_wait(self, doc: StoredFile, blob: StoredBlob, request: UploadRequest,
                                lap: Laps) -> UploadResult:
        # Published as the reservation stands (`uploading`, its lease renewed until the verdict comes): the
        # worker marks it installable straight away. Only an upload that stops waiting marks it stored.
        # upload-api inspected every byte as it streamed: the worker trusts that verdict, and with the core
        # metadata in the message (unless too large for one) reads nothing back from S3.
        inspected = blob.metadata is not None
        event = DistributionStored(
            file_id=doc.id, project_id=doc.project_id, filename=doc.filename,
            object_key=doc.object_key, form=FormMetadata.model_validate(_form_metadata(request)),
            uploader=doc.uploader, reply_to=self.verdicts.reply_to, answers_to=self.verdicts.answers_to,
            upload_id=doc.upload_id,
            size=blob.size, sha256=blob.sha256, md5=blob.md5, blake2_256=blob.blake2_256, inspected=inspected,
            ip_address=request.ip_address, name=doc.name, display_name=doc.display_name, version=doc.version,
            canonical_version=doc.canonical_version, file_kind=doc.kind,
            core_metadata=blob.metadata if inspected and len(blob.metadata or b"") <= MAX_EVENT_METADATA else None,
        )
        future = self.verdicts.expect(doc.upload_id)
        try:
            await self.publisher.publish(event, request.correlation_id)
        except Exception as exc:
            self.verdicts.forget(doc.upload_id)
            log.error("distribution_publish_failed", file_id=doc.id, error=type(exc).__name__)
            await self._undo(doc)
            raise ServiceUnavailable("503 Service Unavailable - the upload could not be queued; retry") from exc
        lap("publish")
        log.info("distribution_stored", file_id=doc.id, project_id=doc.project_id,
                 filename=doc.filename, size=blob.size, sha256=blob.sha256, ms=lap.ms)
        try:
            async with running(self._renew(doc)):
                verdict = await asyncio.wait_for(future, self.verdict_timeout)
        except TimeoutError:
            self.verdicts.forget(doc.upload_id)
            log.warning("verdict_timeout", file_id=doc.id)
            return await self._stop_waiting(doc, blob)
        if isinstance(verdict, DistributionIndexed):
            return UploadResult.CREATED
        raise UploadRejected(verdict.reason)

    async def _renew(self, doc: StoredFile) -> None:
        """Keep our reservation's lease, every third of it, until cancelled (while its bytes stream, and while
        its verdict is awaited)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.reservations.renew_lease(doc.id, doc.upload_id, self.lease)
            except Exception as exc:  # noqa: BLE001 - the next renewal may succeed
                log.warning("lease_renewal_failed", file_id=doc.id, error=type(exc).__name__)

    async def _stop_waiting(self, doc: StoredFile, blob: StoredBlob) -> UploadResult:
        """No verdict in time: the file stays queued for the worker, marked stored first (`processing`: its
        lease no longer renewed, the name must not become reclaimable). 202, or 201 when the worker made it
        installable meanwhile; 503 when the reservation is gone (its lease ran out and the name was taken)."""
        try:
            marked = await self.reservations.mark_stored(doc.id, doc.upload_id, size=blob.size, sha256=blob.sha256,
                                                         md5=blob.md5, blake2_256=blob.blake2_256)
        except Exception as exc:  # noqa: BLE001 - queued all the same; the worker may still index it in time
            log.error("mark_stored_failed", file_id=doc.id, error=type(exc).__name__)
            return UploadResult.ACCEPTED
        if marked:
            return UploadResult.ACCEPTED
        current = await self.reservations.get_file(doc.id)
        if current is not None and current.upload_id == doc.upload_id:
            return UploadResult.CREATED if current.state is FileState.INSTALLABLE else UploadResult.ACCEPTED
        log.warning("reservation_lost", file_id=doc.id, filename=doc.filename)
        raise ServiceUnavailable("503 Service Unavailable - the upload's reservation expired; retry")

    async def _upload_existing_name(self, existing: StoredFile, reservation: StoredFile, request: UploadRequest,
                                    declared: dict[str, str], stored: Streamed) -> UploadResult | Owned:
        """The filename is taken or being uploaded: identical bytes succeed, others get 400. Our stored copy
        goes, unless it takes the place of an earlier holder that failed."""
        result: UploadResult | Owned = UploadResult.ACCEPTED
        try:
            if existing.sha256 and declared.get("sha256") and existing.sha256 != declared["sha256"]:
                await request.content.drain()  # the stream stopped early (_AfterReservation): the rest goes
                raise ValidationFailed(NAME_TAKEN)
            if isinstance(stored, Exception):
                raise _refusal_of_copy(existing, stored) from stored
            if existing.state is FileState.INSTALLABLE:
                if stored.sha256 != existing.sha256:
                    raise ValidationFailed(NAME_TAKEN)
                result = UploadResult.CREATED
                return result
            # A concurrent upload holds the name: our copy stays until it is known, so if it fails we can
            # take its place.
            result = await self._await_holder(existing, reservation, stored)
            return result
        finally:
            if not isinstance(result, tuple):
                await self._delete(reservation.object_key)

    async def _await_holder(self, existing: StoredFile, reservation: StoredFile,
                            blob: StoredBlob) -> UploadResult | Owned:
        deadline = time.monotonic() + self.verdict_timeout
        holder_id = existing.id
        while True:
            current = await self.reservations.get_file(holder_id)
            if current is None or current.abandoned():
                # The holder's upload failed or its process is gone: reserve the name for our stored copy.
                owner, doc = await self._reserve(reservation)
                if owner:
                    log.info("reservation_taken_over", file_id=doc.id, filename=doc.filename)
                    return doc, blob
                holder_id = doc.id
                continue
            stored = current.state in (FileState.PROCESSING, FileState.INSTALLABLE)
            if stored and current.sha256 != blob.sha256:
                raise ValidationFailed(NAME_TAKEN)
            if current.state is FileState.INSTALLABLE:
                return UploadResult.CREATED
            if time.monotonic() >= deadline:
                return UploadResult.ACCEPTED
            # The holder's verdict goes to its own replica; polling the reservation is the portable wait.
            await asyncio.sleep(POLL_INTERVAL)


class _StreamStopped(Exception):
    """Raised into the store's reads by `_AfterReservation`; the reservation's outcome says why."""


class _AfterReservation:
    """The file part as the store reads it (the `Content` port): the first `ahead` bytes at once, the rest
    once the reservation is known, and none past that when the reservation failed or the name is held by
    other bytes than the declared ones, so a large body is not streamed into S3 only to be refused."""

    def __init__(self, content: Content, reserving: Reservation, declared_sha256: str | None, ahead: int) -> None:
        self._content = content
        self._reserving = reserving
        self._declared_sha256 = declared_sha256
        self._ahead = ahead
        self._seen = 0
        self._known = False

    @property
    def filename(self) -> str:
        return self._content.filename

    async def read(self, size: int) -> bytes:
        if not self._known and self._seen >= self._ahead:
            await asyncio.wait([self._reserving])
            self._known = True
            if _stops_early(self._reserving, self._declared_sha256):
                raise _StreamStopped()
        chunk = await self._content.read(size)
        self._seen += len(chunk)
        return chunk

    async def drain(self, limit: int | None = None) -> bool:
        return await self._content.drain(limit)

    async def finish(self) -> None:
        await self._content.finish()


class Laps:
    """Milliseconds spent in each named stage of one request, for its log lines."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round((now - self._last) * 1000, 1)
        self._last = now

    def took(self, stage: str) -> Callable[[object], None]:
        """A done-callback recording how long the work started now (a task running alongside) took."""
        start = time.perf_counter()

        def done(_: object) -> None:
            self.ms[stage] = round((time.perf_counter() - start) * 1000, 1)

        return done


def _declared_digests(request: UploadRequest) -> dict[str, str]:
    declared = {}
    for key, field in (("sha256", "sha256_digest"), ("md5", "md5_digest"), ("blake2_256", "blake2_256_digest")):
        value = request.get(field)
        if value:
            declared[key] = value.strip().lower()
    return declared


def _check_digests(blob: StoredBlob, declared: dict[str, str]) -> None:
    for key, value in declared.items():
        if getattr(blob, key) != value:
            raise UploadRejected(DIGEST_MISMATCH)


def _form_metadata(request: UploadRequest) -> dict[str, str | None]:
    return {key: request.get(key) for key in FormMetadata.model_fields}


def _outcome(reserving: Reservation) -> tuple[bool, StoredFile] | None:
    """A settled reservation task's result; None if it failed (its error is then the caller's to raise)."""
    if reserving.cancelled() or reserving.exception() is not None:
        return None
    return reserving.result()


def _stops_early(reserving: Reservation, declared_sha256: str | None) -> bool:
    """Whether the stream should stop once the reservation is known: it failed, or the name is held by a file
    whose digest is not the declared one (the upload is refused whatever its bytes)."""
    outcome = _outcome(reserving)
    if outcome is None:
        return True
    owner, existing = outcome
    return not owner and bool(existing.sha256 and declared_sha256 and existing.sha256 != declared_sha256)


def _refusal_of_copy(existing: StoredFile, failure: Exception) -> Exception:
    """Why our copy of a held name failed. An inspector's refusal against an installable file means other
    bytes (that file passed inspection), so the name is taken, as comparing digests would have said."""
    if (reason := _invalid_distribution(failure)) is not None:
        if existing.state is FileState.INSTALLABLE:
            return ValidationFailed(NAME_TAKEN)
        return UploadRejected(reason)
    if isinstance(failure, DomainError):
        return failure
    return ServiceUnavailable("503 Service Unavailable - object storage failed; retry")


def _invalid_distribution(exc: BaseException) -> str | None:
    """The reason of the inspector's refusal (`Invalid distribution file: ...`), if that is what `exc` is."""
    return exc.message if isinstance(exc, InvalidDistribution) else None
