"""The metadata-worker application run against real servers (the session's nx-27017, SeaweedFS and
RabbitMQ from tests/conftest.py), with a harness that plays upload-api and listens like index-api.

Each test gets its own database, bucket and exchange (`service_env`); nothing waits by sleeping:
events, dead letters and settled outcomes arrive on queues awaited under a deadline.
"""
from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web

from metadata_worker.app import BROKER, CONSUMER, create_app, retry_policy
from metadata_worker.settings import WorkerSettings
from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.domain.access import RegistryAccess, Visibility
from registry_shared.domain.filenames import parse_filename
from registry_shared.domain.names import normalize_name
from registry_shared.domain.versions import canonical_version
from registry_shared.events import DistributionStored, Event, FormMetadata, IndexChanged, parse_event
from registry_shared.records.files import StoredFile
from registry_shared.topology import (
    dead_letter_exchange,
    dead_letter_queue,
    retry_queue,
    verdict_bindings,
    worker_queue,
)
from tests.support.servers import settings_from_env

DEADLINE = 20.0


@dataclass
class Received:
    event: Event
    correlation_id: str | None


@dataclass
class WorkerHarness:
    settings: WorkerSettings
    app: web.Application
    base_url: str
    mongo: Mongo
    store: ObjectStore
    broker: Broker
    runner: web.AppRunner
    reply_to: str = field(default_factory=lambda: f"test-upload-{uuid.uuid4().hex[:8]}")
    events: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    stash: list[Received] = field(default_factory=list)
    dead: asyncio.Queue[AbstractIncomingMessage] = field(default_factory=asyncio.Queue)
    outcomes: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    stopped: bool = False
    _dead_consumer: tuple[Any, str] | None = None

    @property
    def work_queue(self) -> str:
        return worker_queue(self.settings.amqp_exchange)

    @property
    def packages(self) -> PackageRepository:
        return PackageRepository(self.mongo)

    # -- playing upload-api -----------------------------------------------------------------------
    async def project(self, group_path: str = "acme/platform", name: str = "api") -> dict[str, Any]:
        """A project under nested groups (created on first use), as registry-admin makes them."""
        tenancy = TenancyRepository(self.mongo)
        parts = group_path.split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if await tenancy.find_group(path) is None:
                await tenancy.create_group(path, None, Visibility.PUBLIC)
        return await tenancy.create_project(f"{group_path}/{name}", None, Visibility.PUBLIC, RegistryAccess.ENABLED)

    async def store_distribution(self, project_id: int, filename: str, data: bytes, *, state: str = "processing",
                                 form: dict[str, Any] | None = None) -> DistributionStored:
        """Reserve, store the bytes and mark them stored, as upload-api does; the event it would publish."""
        parsed = parse_filename(filename)
        display_name, version = _name_and_version(filename)
        upload_id = uuid.uuid4().hex
        digests = {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
                   "blake2_256": hashlib.blake2b(data, digest_size=32).hexdigest(), "size": len(data)}
        reservation = StoredFile(
            id=0, project_id=project_id, filename=filename, upload_id=upload_id,
            object_key=f"files/{project_id}/{upload_id}/{filename}", kind=parsed.kind.value,
            name=normalize_name(display_name), display_name=display_name, version=version,
            canonical_version=canonical_version(version), sha256=digests["sha256"],
            uploader={"principal": "user", "user_id": 1}, correlation_id="corr-" + upload_id[:8],
        )
        owner, doc = await self.packages.reserve(reservation)
        assert owner
        await self.store.put_bytes(doc.object_key, data)
        if state != "uploading":
            assert await self.packages.mark_stored(doc.id, upload_id, **digests)
        return DistributionStored(
            file_id=doc.id, project_id=project_id, filename=filename, object_key=doc.object_key,
            form=FormMetadata(name=display_name, version=version, **(form or {})), reply_to=self.reply_to,
            upload_id=upload_id, uploader=reservation.uploader, **digests,
        )

    async def publish(self, event: Event, correlation_id: str, **properties: Any) -> None:
        await self.broker.publish(event, correlation_id, **properties)

    async def publish_raw(self, body: bytes, message_type: str | None, routing_key: str) -> str:
        message_id = uuid.uuid4().hex
        message = aio_pika.Message(body=body, type=message_type, message_id=message_id, correlation_id="poison",
                                   delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await self.broker.exchange.publish(message, routing_key=routing_key, timeout=10)
        return message_id

    # -- listening ---------------------------------------------------------------------------------
    async def next_event(self, kind: str) -> Received:
        """The next event of `kind` addressed to us (index.changed or our verdicts), under a deadline."""
        for received in self.stash:
            if received.event.kind == kind:
                self.stash.remove(received)
                return received
        async with asyncio.timeout(DEADLINE):
            while True:
                received = await self.events.get()
                if received.event.kind == kind:
                    return received
                self.stash.append(received)  # another kind: kept for a later next_event

    async def next_outcome(self, kind: str) -> str:
        """The outcome of the next message of `kind` the worker settled."""
        async with asyncio.timeout(DEADLINE):
            while True:
                message_kind, outcome = await self.outcomes.get()
                if message_kind == kind:
                    return outcome

    async def next_dead_letter(self) -> AbstractIncomingMessage:
        return await asyncio.wait_for(self.dead.get(), DEADLINE)

    async def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every document the worker writes, for before/after comparisons."""
        return {name: [doc async for doc in self.mongo.db[name].find({}).sort("_id", 1)]
                for name in ("distributions", "packages", "core_metadata", "simple_pages")}

    async def start_listening(self) -> None:
        async def on_event(message: AbstractIncomingMessage) -> None:
            async with message.process():
                self.events.put_nowait(Received(parse_event(message.type, message.body), message.correlation_id))

        async def on_dead(message: AbstractIncomingMessage) -> None:
            await message.ack()
            self.dead.put_nowait(message)

        queue = await self.broker.declare_private_queue([IndexChanged.kind, *verdict_bindings(self.reply_to)])
        await queue.consume(on_event)
        dead = await self.broker.channel.declare_queue(dead_letter_queue(self.work_queue), durable=True)
        self._dead_consumer = (dead, await dead.consume(on_dead))
        self.app[CONSUMER].observers.append(lambda kind, outcome: self.outcomes.put_nowait((kind, outcome)))

    async def stop_worker(self) -> None:
        """Shut the worker down as SIGTERM would (the app's cleanup contexts, in reverse)."""
        if not self.stopped:
            self.stopped = True
            await self.runner.cleanup()

    async def queued(self) -> int:
        """Messages waiting in the work queue."""
        queue = await self.broker.channel.declare_queue(self.work_queue, passive=True)
        return queue.declaration_result.message_count

    async def clean_up(self) -> None:
        """Remove this test's queues, exchanges, objects, bucket and database."""
        name = self.work_queue
        channel = self.broker.channel
        if self._dead_consumer is not None:
            queue, tag = self._dead_consumer
            await queue.cancel(tag)
        delay_queues = [retry_queue(name, delay) for delay in retry_policy(self.settings).tiers_ms()]
        for queue in (name, dead_letter_queue(name), *delay_queues):
            await channel.queue_delete(queue)
        for exchange in (self.settings.amqp_exchange, dead_letter_exchange(self.settings.amqp_exchange)):
            await channel.exchange_delete(exchange)
        await self.broker.close()

        def empty_bucket() -> None:
            client, bucket = self.store.client, self.store.bucket
            if client.bucket_exists(bucket):
                for obj in client.list_objects(bucket, recursive=True):
                    client.remove_object(bucket, obj.object_name)
                client.remove_bucket(bucket)

        await asyncio.to_thread(empty_bucket)
        await self.mongo.client.drop_database(self.mongo.db.name)
        await self.mongo.close()


def _name_and_version(filename: str) -> tuple[str, str]:
    """The name and version as an uploader would type them, from the filename."""
    stem = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename.rsplit(".", 1)[0]
    name, version = stem.split("-")[:2]
    return name, version


@pytest.fixture
def worker_overrides() -> dict[str, Any]:
    """Settings one test changes: parametrize it (`@pytest.mark.parametrize("worker_overrides", [{...}])`)."""
    return {}


@pytest.fixture
def worker_settings(service_env: dict[str, str], worker_overrides: dict[str, Any]) -> WorkerSettings:
    # One 0.2 s delay queue and a 1 s window: a transient failure is retried a few times, then dead-lettered.
    settings = {"http_host": "127.0.0.1", "http_port": 0, "shutdown_timeout": 5, "worker_retry_delay": 0.2,
                "worker_retry_delay_max": 0.2, "worker_retry_window": 1.0, **worker_overrides}
    return settings_from_env(WorkerSettings, service_env, **settings)


@pytest.fixture
async def worker(worker_settings: WorkerSettings) -> AsyncIterator[WorkerHarness]:
    """The production app (cleanup contexts, consumer, HTTP) started on a free port, and the harness."""
    app = create_app(worker_settings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    broker = Broker(worker_settings.amqp_url, worker_settings.amqp_exchange)
    await broker.connect()
    harness = WorkerHarness(
        settings=worker_settings, app=app, base_url=f"http://{host}:{port}",
        mongo=Mongo.connect(worker_settings.mongodb_url, worker_settings.mongodb_database),
        store=ObjectStore.from_settings(worker_settings), broker=broker, runner=runner,
    )
    await harness.start_listening()
    assert app[BROKER].connected
    try:
        yield harness
    finally:
        await harness.stop_worker()
        await harness.clean_up()
