"""The worker's use cases (DESIGN.md "Upload", step 4): index or reject a stored distribution; free the
filename of one given up on; remove the objects of deleted files.

Every step is idempotent, so a redelivered message changes nothing: a file already installable only
has its pages checked and its events sent again; a reservation already gone is acknowledged.
Content problems end in a rejection; every other exception propagates and the caller retries.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

import structlog

from registry_shared.domain.metadata import merge_metadata
from registry_shared.domain.text import printable
from registry_shared.events import (
    DistributionIndexed,
    DistributionRejected,
    DistributionStored,
    Event,
    FileDeleted,
    IndexChanged,
    Scope,
)
from registry_shared.records.files import FileState, IndexedFields, StoredBytes, StoredFile
from registry_shared.records.packages import PackageRecord
from registry_shared.replicas import Awaited
from registry_shared.topology import verdict_key

from .inspect import Expected, Inspection, InvalidDistribution, check_metadata
from .readme import render_bounded

log = structlog.get_logger()
EDGE_INSPECTED = "(inspected by upload-api)"  # the metadata path of an inspection done at the edge


class Outcome(StrEnum):
    INDEXED = "indexed"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    DELETED = "deleted"


class FileNotReady(Exception):
    """The file document is not in a state the worker can act on yet (transient)."""


# -- ports -------------------------------------------------------------------------------------

class Files(Protocol):
    """distributions, packages and core_metadata (PackageRepository implements it)."""

    async def get_file(self, file_id: int) -> StoredFile | None: ...
    async def release(self, file_id: int, upload_id: str | None = None) -> bool: ...
    async def mark_installable(self, file_id: int, fields: IndexedFields,
                               upload_id: str | None = None) -> StoredFile | None: ...
    async def put_core_metadata(self, file_id: int, data: bytes) -> None: ...
    async def ensure_package(self, package: PackageRecord) -> int: ...


class Distributions(Protocol):
    async def inspect(self, object_key: str, filename: str, expected: Expected) -> Inspection: ...
    async def delete(self, key: str) -> None: ...


class Pages(Protocol):
    """`registry_shared.pages.PageBuilder`."""

    async def index_file(self, project_id: int, file_id: int, name: str, file: StoredFile | None = None,
                         announce: Callable[[list[Scope]], Awaitable[None]] | None = None,
                         installed_at: float | None = None) -> list[Scope]: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...

    async def announce_to(self, event: Event, correlation_id: str | None, answers_to: str) -> Awaited:
        """Publish an `index.changed` whose answers go to `answers_to`; whom that queue's process awaits."""
        ...


# -- use cases ---------------------------------------------------------------------------------

class IndexingService:
    def __init__(self, files: Files, distributions: Distributions, pages: Pages, publisher: Publisher) -> None:
        self.files = files
        self.distributions = distributions
        self.pages = pages
        self.publisher = publisher

    async def distribution_stored(self, event: DistributionStored, correlation_id: str | None,
                                  first_delivery: bool = False) -> Outcome:
        """Index the file `event` announces (or reject it).

        `first_delivery`: the broker delivers this message for the first time (neither redelivered nor
        retried). upload-api marked the file stored before publishing it, so the file is as the message
        describes and is not read first; marking it installable finds out whether it is still there. A
        message delivered again may find the file indexed already (only the idempotent tail runs) and reads it.
        """
        known = event.reservation(correlation_id) if first_delivery else None
        doc = known or await self.files.get_file(event.file_id)
        if doc is None:
            log.info("distribution_reservation_gone", **_facts(event))
            return Outcome.SKIPPED
        # The AMQP property is authoritative; the reservation remembers it for messages that lost it.
        correlation_id = correlation_id or doc.correlation_id
        if doc.state is FileState.INSTALLABLE:
            # A redelivery, or a crash after indexing: only the idempotent tail runs again.
            await self._announce(doc, event, correlation_id, redelivered=True)
            return Outcome.INDEXED
        # Published while `uploading` (its upload awaits the verdict, renewing the lease), or marked stored.
        awaited = doc.state is FileState.UPLOADING and bool(event.upload_id) and doc.upload_id == event.upload_id
        if doc.state is not FileState.PROCESSING and not awaited:
            raise FileNotReady(f"file {doc.id} is {doc.state}")
        expected = Expected(doc.name, doc.canonical_version, doc.display_name, doc.version)
        started = time.perf_counter()
        try:
            if event.inspected and event.core_metadata is not None:
                # upload-api judged every byte as it streamed and sent the metadata: nothing to read back.
                inspection = check_metadata(event.core_metadata, EDGE_INSPECTED, expected)
            else:
                inspection = await self.distributions.inspect(doc.object_key, doc.filename, expected)
        except InvalidDistribution as exc:
            await self._reject(doc, event, exc, correlation_id)
            return Outcome.REJECTED
        inspected = time.perf_counter()
        log.info("distribution_inspected", **_facts(event), metadata_path=inspection.metadata_path,
                 ms=_ms(started, inspected))
        installed, installed_at = await self._index(doc, event, inspection)
        if installed is None:
            log.info("distribution_reservation_gone", **_facts(event))
            return Outcome.SKIPPED
        await self._announce(doc, event, correlation_id, indexed_ms=_ms(inspected, time.perf_counter()),
                             installed=installed, installed_at=installed_at)
        return Outcome.INDEXED

    async def distribution_abandoned(self, event: DistributionStored) -> bool:
        """Free the filename of a stored distribution the worker gave up on (its retry window passed): drop
        the reservation, then the object. True if there was one to drop.

        Only a reservation that is still this upload's and not installable is dropped (a file indexed
        before a later step failed stays). The object goes after the reservation, never before: an object
        left behind costs storage, a reservation left without its object would block the filename."""
        doc = await self.files.get_file(event.file_id)
        released = False
        if doc is not None:
            released = await self.files.release(doc.id, event.upload_id or doc.upload_id or None)
            if released:
                await self.distributions.delete(doc.object_key)
        log.warning("distribution_abandoned", **_facts(event), released=released)
        return released

    async def file_deleted(self, event: FileDeleted) -> Outcome:
        for key in event.object_keys:
            await self.distributions.delete(key)
        log.info("file_objects_deleted", file_id=event.file_id, project_id=event.project_id,
                 objects=len(event.object_keys))
        return Outcome.DELETED

    async def _index(self, doc: StoredFile, event: DistributionStored,
                     inspection: Inspection) -> tuple[StoredFile | None, float]:
        """Store the core metadata, the package and the file's metadata; the file as now installable (None if
        it vanished), and when (`time.monotonic()`) it began to be made so."""
        form = event.form.model_dump()
        merged = merge_metadata(inspection.metadata, form)
        package = PackageRecord(id=0, project_id=doc.project_id, name=doc.name, version=doc.canonical_version,
                                display_name=doc.display_name, display_version=doc.version)
        # The README renders (from the whole description: the stored one is cut at GitLab's 4,000 characters,
        # in the renderer's processes) while the core metadata and the package are written.
        description = inspection.metadata.get("description") or form.get("description")
        readme, _, package_id = await asyncio.gather(
            _render(str(description) if description else None,
                    str(merged.get("description_content_type") or "") or None),
            self.files.put_core_metadata(doc.id, inspection.metadata_bytes), self.files.ensure_package(package))
        fields = IndexedFields.of(
            merged, package_id=package_id, metadata_sha256=hashlib.sha256(inspection.metadata_bytes).hexdigest(),
            indexed_at=datetime.now(UTC), description_html=readme,
            stored=StoredBytes(event.size, event.sha256, event.md5, event.blake2_256))
        installed_at = time.monotonic()
        return await self.files.mark_installable(doc.id, fields, event.upload_id or None), installed_at

    async def _announce(self, doc: StoredFile, event: DistributionStored, correlation_id: str | None,
                        redelivered: bool = False, indexed_ms: float | None = None,
                        installed: StoredFile | None = None, installed_at: float | None = None) -> None:
        """Update the pages, then tell every index-api and web replica, then the waiting upload-api replica.

        When the uploading replica named its queue (`answers_to`), the replicas answer it directly and it
        awaits them before its 201: the verdict names the announcement and whom to wait for, and goes out
        while they apply the change. Otherwise every live replica has applied it before the verdict goes."""
        started = time.perf_counter()
        announced: list[float] = []
        awaited: list[Awaited] = []

        async def announce(scopes: list[Scope]) -> None:
            begun = time.perf_counter()
            change = IndexChanged(scopes=scopes, names=[doc.name])
            if event.answers_to and event.reply_to:
                awaited.append(await self.publisher.announce_to(change, correlation_id, event.answers_to))
            else:  # returns once every live replica applied it (replicas.Announcer)
                await self.publisher.publish(change, correlation_id)
            announced.append(_ms(begun, time.perf_counter()))

        # The pages announce the change themselves, while they check the file once more.
        scopes = await self.pages.index_file(doc.project_id, doc.id, doc.name, installed, announce, installed_at)
        # Logged before the verdict goes out: the verdict releases the uploader's 201, and whoever reads the
        # logs after it (a test, an operator following the correlation id) must find this line.
        ms = {"documents": indexed_ms, "pages": _ms(started, time.perf_counter()), "announce": sum(announced)}
        log.info("distribution_indexed", **_facts(event), scopes=len(scopes), redelivered=redelivered, ms=ms)
        package_id = installed.package_id if installed is not None else doc.package_id
        last = awaited[-1] if awaited else Awaited()  # a later announcement supersedes an earlier one
        verdict = DistributionIndexed(file_id=doc.id, project_id=doc.project_id, filename=doc.filename,
                                      upload_id=event.upload_id or doc.upload_id, package_id=package_id,
                                      name=doc.display_name or doc.name, version=doc.version,
                                      uploader=doc.uploader or event.uploader, ip_address=event.ip_address,
                                      applied_id=last.message_id, awaited=last.replicas)
        await self.publisher.publish(verdict, correlation_id, verdict_key(verdict.kind, event.reply_to))

    async def _reject(self, doc: StoredFile, event: DistributionStored, exc: InvalidDistribution,
                      correlation_id: str | None) -> None:
        await self.distributions.delete(doc.object_key)
        await self.files.release(doc.id, doc.upload_id or None)
        # The event model makes the reason printable whatever built it, so the verdict always serialises.
        verdict = DistributionRejected(file_id=doc.id, project_id=doc.project_id, filename=doc.filename,
                                       reason=exc.message, upload_id=event.upload_id or doc.upload_id,
                                       name=doc.display_name or doc.name, version=doc.version,
                                       uploader=doc.uploader or event.uploader, ip_address=event.ip_address)
        await self.publisher.publish(verdict, correlation_id, verdict_key(verdict.kind, event.reply_to))
        log.info("distribution_rejected", **_facts(event), reason=printable(exc.reason))


async def _render(description: str | None, content_type: str | None) -> str | None:
    """The README as HTML (None without one), rendered off the event loop."""
    if not description:
        return None
    return await asyncio.to_thread(render_bounded, description, content_type)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 1)


def _facts(event: DistributionStored) -> dict[str, object]:
    return {"file_id": event.file_id, "project_id": event.project_id, "filename": event.filename}
