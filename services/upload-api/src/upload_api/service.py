"""The upload use case (DESIGN.md "Upload"): authorize, validate, reserve, stream, publish, await verdict."""
from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import BodyPartReader

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.packages import INSTALLABLE, PROCESSING, PackageRepository, abandoned
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.domain.access import Principal, authorize_upload
from registry_shared.domain.filenames import check_filename_matches, parse_filename
from registry_shared.domain.names import normalize_name, validate_name
from registry_shared.domain.versions import canonical_version, validate_version
from registry_shared.errors import DomainError, NotFound, ServiceUnavailable, UploadRejected, ValidationFailed
from registry_shared.events import DistributionIndexed, DistributionStored, FormMetadata

from .multipart import UploadForm, drain
from .storage import StoredBlob, hash_only, stream_to_store
from .verdicts import VerdictWaiter

log = structlog.get_logger()

DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
NAME_TAKEN = "File name has already been taken"
POLL_INTERVAL = 0.05


Owned = tuple[dict[str, Any], StoredBlob]


class Outcome:
    CREATED = 201
    ACCEPTED = 202


@dataclass(frozen=True)
class UploadContext:
    project_ref: str
    username: str | None
    password: str | None
    correlation_id: str


class UploadService:
    def __init__(self, tenancy: TenancyRepository, packages: PackageRepository, store: ObjectStore,
                 broker: Broker, verdicts: VerdictWaiter, *, max_size: int, part_size: int,
                 verdict_timeout: float, lease: float = 30.0) -> None:
        self.tenancy = tenancy
        self.packages = packages
        self.store = store
        self.broker = broker
        self.verdicts = verdicts
        self.resolver = CredentialResolver(tenancy)
        self.facts = AccessFactsService(tenancy)
        self.max_size = max_size
        self.part_size = part_size
        self.verdict_timeout = verdict_timeout
        self.lease = lease

    async def authorize(self, ctx: UploadContext) -> tuple[dict[str, Any], Principal]:
        """SPEC §3.1 upload order: unknown project 404, then 401 / 404 / 403."""
        # Looked up together; the project's absence is still reported before any credential problem.
        project, principal = await asyncio.gather(self.tenancy.find_project(ctx.project_ref),
                                                  self.resolver.resolve(ctx.username, ctx.password),
                                                  return_exceptions=True)
        if isinstance(project, BaseException):
            raise project
        if project is None:
            raise NotFound()
        if isinstance(principal, BaseException):
            raise principal
        authorize_upload(principal, await self.facts.for_project(principal, project))
        return project, principal

    async def upload(self, ctx: UploadContext, form: UploadForm) -> int:
        lap = Laps()
        project, principal = await self.authorize(ctx)
        lap("auth")
        name = validate_name(form.get("name") or "")
        version = validate_version(form.get("version") or "")
        parsed = parse_filename(form.filename)
        check_filename_matches(parsed, name, version)
        assert form.content is not None
        upload_id = uuid.uuid4().hex
        declared = _declared_digests(form)
        reservation = {
            "project_id": project["_id"], "filename": form.filename, "upload_id": upload_id,
            "object_key": f"files/{project['_id']}/{upload_id}/{form.filename}", "kind": parsed.kind.value,
            "name": normalize_name(name), "display_name": name, "version": version,
            "canonical_version": canonical_version(version), "sha256": declared.get("sha256"),
            "uploader": principal.log_fields(), "correlation_id": ctx.correlation_id,
        }
        owner, doc = await self._reserve(reservation)
        lap("reserve")
        if owner:
            async with self._holding(doc):
                blob = await self._store(doc, form.content, declared)
            lap("store")
        else:
            result = await self._upload_existing_name(doc, reservation, form, declared)
            if isinstance(result, int):
                return result
            doc, blob = result  # the earlier holder failed and we won the name for our copy
        return await self._publish_and_wait(doc, blob, form, ctx, lap)

    async def _reserve(self, reservation: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Reserve the filename, first reclaiming a reservation whose holder is gone (its lease ran out)."""
        while True:
            owner, doc = await self.packages.reserve(reservation, self.lease)
            if owner or not abandoned(doc):
                return owner, doc
            if await self.packages.reclaim(doc):
                log.warning("reservation_reclaimed", file_id=doc["_id"], filename=doc["filename"],
                            abandoned_upload=doc.get("upload_id"))
                await self.store.delete(doc["object_key"])

    @contextlib.asynccontextmanager
    async def _holding(self, doc: dict[str, Any]) -> AsyncIterator[None]:
        """Renew the reservation's lease while its bytes stream in (a 5 GB upload outlasts many leases)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    await self.packages.renew_lease(doc["_id"], doc["upload_id"], self.lease)
                except Exception as exc:  # noqa: BLE001 - the next renewal may succeed; mark_stored decides
                    log.warning("lease_renewal_failed", file_id=doc["_id"], error=type(exc).__name__)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _store(self, doc: dict[str, Any], part: BodyPartReader, declared: dict[str, str]) -> StoredBlob:
        """Stream into S3; on any failure remove what was written and release the reservation."""
        try:
            blob = await stream_to_store(self.store, doc["object_key"], part, self.max_size, self.part_size)
            _check_digests(blob, declared)
            return blob
        except DomainError:
            await self._undo(doc)
            raise
        except asyncio.CancelledError:
            await self._undo(doc)
            raise
        except Exception as exc:
            await self._undo(doc)
            log.error("object_store_failed", file_id=doc["_id"], error=type(exc).__name__)
            raise ServiceUnavailable("503 Service Unavailable - object storage failed; retry") from exc

    async def _undo(self, doc: dict[str, Any]) -> None:
        """Remove the object and release the reservation, as far as the dependencies allow: what cannot be
        undone now (the database is down) is an abandoned reservation, reclaimed once its lease runs out."""
        try:
            await self.store.delete(doc["object_key"])
        except Exception as exc:  # noqa: BLE001 - an orphan object blocks nothing; the reservation matters
            log.warning("undo_object_failed", file_id=doc["_id"], error=type(exc).__name__)
        try:
            await self.packages.release(doc["_id"], doc["upload_id"])
        except Exception as exc:  # noqa: BLE001
            log.warning("undo_reservation_failed", file_id=doc["_id"], error=type(exc).__name__,
                        reclaimable_in_s=self.lease)

    async def _publish_and_wait(self, doc: dict[str, Any], blob: StoredBlob, form: UploadForm,
                                ctx: UploadContext, lap: Laps) -> int:
        fields = {"sha256": blob.sha256, "md5": blob.md5, "blake2_256": blob.blake2_256, "size": blob.size}
        try:
            marked = await self.packages.mark_stored(doc["_id"], doc["upload_id"], fields)
        except Exception as exc:
            log.error("mark_stored_failed", file_id=doc["_id"], error=type(exc).__name__)
            await self._undo(doc)
            raise ServiceUnavailable("503 Service Unavailable - the database failed; retry") from exc
        if not marked:
            # Our lease ran out and another upload reclaimed the name: this copy must not be published.
            log.warning("reservation_lost", file_id=doc["_id"], filename=doc["filename"])
            await self._undo(doc)
            raise ServiceUnavailable("503 Service Unavailable - the upload's reservation expired; retry")
        lap("mark_stored")
        event = DistributionStored(
            file_id=doc["_id"], project_id=doc["project_id"], filename=doc["filename"],
            object_key=doc["object_key"], form=FormMetadata(**_form_metadata(form)), uploader=doc["uploader"],
            reply_to=self.verdicts.reply_to, upload_id=doc["upload_id"], **fields,
        )
        future = self.verdicts.expect(doc["upload_id"])
        try:
            await self.broker.publish(event, ctx.correlation_id)
        except Exception as exc:
            self.verdicts.forget(doc["upload_id"])
            log.error("distribution_publish_failed", file_id=doc["_id"], error=type(exc).__name__)
            await self._undo(doc)
            raise ServiceUnavailable("503 Service Unavailable - the upload could not be queued; retry") from exc
        lap("publish")
        log.info("distribution_stored", file_id=doc["_id"], project_id=doc["project_id"],
                 filename=doc["filename"], size=blob.size, sha256=blob.sha256, ms=lap.ms)
        try:
            verdict = await asyncio.wait_for(future, self.verdict_timeout)
        except TimeoutError:
            self.verdicts.forget(doc["upload_id"])
            log.warning("verdict_timeout", file_id=doc["_id"])
            return Outcome.ACCEPTED
        if isinstance(verdict, DistributionIndexed):
            return Outcome.CREATED
        raise UploadRejected(verdict.reason)

    async def _upload_existing_name(self, existing: dict[str, Any], reservation: dict[str, Any],
                                    form: UploadForm, declared: dict[str, str]) -> int | Owned:
        """The filename is taken or being uploaded: identical bytes succeed, others get 400."""
        assert form.content is not None
        if existing.get("sha256") and declared.get("sha256") and existing["sha256"] != declared["sha256"]:
            await drain(form.content)
            raise ValidationFailed(NAME_TAKEN)
        if existing.get("state") == INSTALLABLE:
            blob = await hash_only(form.content, self.max_size)
            _check_digests(blob, declared)
            if blob.sha256 != existing["sha256"]:
                raise ValidationFailed(NAME_TAKEN)
            return Outcome.CREATED
        # A concurrent upload holds the name. Keep our own copy, so if it fails we can take its place.
        blob = await stream_to_store(self.store, reservation["object_key"], form.content, self.max_size,
                                     self.part_size)
        result: int | Owned = Outcome.ACCEPTED
        try:
            _check_digests(blob, declared)
            result = await self._await_holder(existing, reservation, blob)
            return result
        finally:
            if not isinstance(result, tuple):
                await self.store.delete(reservation["object_key"])

    async def _await_holder(self, existing: dict[str, Any], reservation: dict[str, Any],
                            blob: StoredBlob) -> int | Owned:
        deadline = time.monotonic() + self.verdict_timeout
        holder_id = existing["_id"]
        while True:
            current = await self.packages.get_file(holder_id)
            if current is None or abandoned(current):
                # The holder's upload failed or its process is gone: reserve the name for our stored copy.
                owner, doc = await self._reserve(reservation)
                if owner:
                    log.info("reservation_taken_over", file_id=doc["_id"], filename=doc["filename"])
                    return doc, blob
                holder_id = doc["_id"]
                continue
            if current.get("state") in (PROCESSING, INSTALLABLE) and current.get("sha256") != blob.sha256:
                raise ValidationFailed(NAME_TAKEN)
            if current.get("state") == INSTALLABLE:
                return Outcome.CREATED
            if time.monotonic() >= deadline:
                return Outcome.ACCEPTED
            # The holder's verdict goes to its own replica; polling the reservation is the portable wait.
            await asyncio.sleep(POLL_INTERVAL)


class Laps:
    """Milliseconds spent in each named stage of one request, for its log lines."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round((now - self._last) * 1000, 1)
        self._last = now


def _declared_digests(form: UploadForm) -> dict[str, str]:
    declared = {}
    for key, field in (("sha256", "sha256_digest"), ("md5", "md5_digest"), ("blake2_256", "blake2_256_digest")):
        value = form.get(field)
        if value:
            declared[key] = value.strip().lower()
    return declared


def _check_digests(blob: StoredBlob, declared: dict[str, str]) -> None:
    for key, value in declared.items():
        if getattr(blob, key) != value:
            raise UploadRejected(DIGEST_MISMATCH)


def _form_metadata(form: UploadForm) -> dict[str, str | None]:
    return {key: form.get(key) for key in FormMetadata.model_fields}
