"""The metadata-worker application: health, readiness and metrics over HTTP, and the queue consumer.

One cleanup context per external resource, connected in order and torn down in reverse; the consumer
comes last, so on SIGTERM it stops (and finishes the messages in hand) before anything it uses closes.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.pages import PageBuilder
from registry_shared.web.app import READY_CHECKS, create_base_app

from .adapters.messaging import WorkerPublisher
from .adapters.objects import S3Distributions
from .handlers import BINDINGS, Consumer
from .service import IndexingService
from .settings import WorkerSettings

MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("store", ObjectStore)
BROKER = web.AppKey("broker", Broker)
CONSUMER = web.AppKey("consumer", Consumer)

log = structlog.get_logger()


def work_queue_name(settings: WorkerSettings) -> str:
    """`<exchange>.metadata-worker` (contracts.md); its dead-letter queue is `<name>.dead`."""
    return f"{settings.amqp_exchange}.metadata-worker"


def create_app(settings: WorkerSettings) -> web.Application:
    app = create_base_app("metadata-worker")

    async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
        mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
        await mongo.ensure_indexes()
        app[MONGO] = mongo
        app[READY_CHECKS]["mongodb"] = mongo.ping
        yield
        await mongo.close()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = ObjectStore.from_settings(settings)
        await store.ensure_bucket()
        app[STORE] = store
        app[READY_CHECKS]["s3"] = store.ping
        yield

    async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = Broker(settings.amqp_url, settings.amqp_exchange)
        await broker.connect()
        app[BROKER] = broker
        app[READY_CHECKS]["amqp"] = broker.ping
        yield
        await broker.close()

    async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
        packages = PackageRepository(app[MONGO])
        distributions = S3Distributions(app[STORE], threads=settings.worker_prefetch)
        publisher = WorkerPublisher(app[BROKER], work_queue_name(settings))
        service = IndexingService(packages, distributions, PageBuilder(app[MONGO], packages), publisher)
        consumer = Consumer(service, publisher, max_retries=settings.worker_max_retries,
                            retry_delay=settings.worker_retry_delay, retry_delay_max=settings.worker_retry_delay_max)
        queue = await app[BROKER].declare_work_queue(work_queue_name(settings), BINDINGS, settings.worker_prefetch)
        await consumer.start(queue)
        app[CONSUMER] = consumer
        log.info("consumer_started", queue=queue.name, bindings=list(BINDINGS), prefetch=settings.worker_prefetch)
        yield
        await consumer.stop(settings.shutdown_timeout)
        distributions.close()
        log.info("consumer_stopped", queue=queue.name)

    app.cleanup_ctx.extend([mongo_ctx, store_ctx, broker_ctx, consumer_ctx])
    return app
