"""A stand-in for the metadata-worker (our own service), for tests of upload-api on its own."""
from __future__ import annotations

from datetime import UTC, datetime

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.packages import PackageRepository
from registry_shared.events import DistributionIndexed, DistributionRejected, DistributionStored, parse_event
from registry_shared.records.files import IndexedFields, StoredBytes


class FakeWorker:
    """Consumes distribution.stored like the metadata-worker and answers with a chosen verdict."""

    def __init__(self, broker: Broker, packages: PackageRepository, exchange: str) -> None:
        self.broker, self.packages, self.exchange = broker, packages, exchange
        self.reject_reason: str | None = None
        self.silent = False
        self.seen: list[DistributionStored] = []

    async def start(self) -> None:
        queue = await self.broker.declare_work_queue(f"{self.exchange}.metadata-worker",
                                                     ("distribution.stored", "file.deleted"), prefetch=10)
        await queue.consume(self._handle)

    async def _handle(self, message) -> None:
        async with message.process():
            event = parse_event(message.type, message.body)
            if not isinstance(event, DistributionStored):
                return
            self.seen.append(event)
            if self.silent:
                return
            if self.reject_reason:
                await self.packages.release(event.file_id, event.upload_id)
                verdict = DistributionRejected(file_id=event.file_id, project_id=event.project_id,
                                               filename=event.filename, reason=self.reject_reason,
                                               upload_id=event.upload_id)
            else:
                # No package and no metadata: the tests of upload-api look at the state alone.
                indexed = IndexedFields(package_id=0, metadata_sha256="", indexed_at=datetime.now(UTC),
                                        stored=StoredBytes(event.size, event.sha256, event.md5, event.blake2_256))
                await self.packages.mark_installable(event.file_id, indexed, event.upload_id)
                verdict = DistributionIndexed(file_id=event.file_id, project_id=event.project_id,
                                              filename=event.filename, upload_id=event.upload_id)
            await self.broker.publish(verdict, message.correlation_id, f"{verdict.kind}.{event.reply_to}")
