"""The cleanup contexts every service reaches MongoDB, S3 and RabbitMQ through: connected in order before
the service serves, registered as readiness checks, closed in reverse after the requests in flight finished
(serve.py)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ..adapters.amqp import Broker
from ..adapters.mongo import Mongo
from ..adapters.s3 import ObjectStore
from ..settings import CommonSettings
from .app import READY_CHECKS

MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("object_store", ObjectStore)
BROKER = web.AppKey("broker", Broker)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def mongo_context(settings: CommonSettings, *, ensure_indexes: bool = False) -> CleanupContext:
    async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
        mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
        if ensure_indexes:
            await mongo.ensure_indexes()
        app[MONGO] = mongo
        app[READY_CHECKS]["mongodb"] = mongo.ping
        yield
        await mongo.close()

    return mongo_ctx


def store_context(settings: CommonSettings, *, ensure_bucket: bool = False) -> CleanupContext:
    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = ObjectStore.from_settings(settings)
        if ensure_bucket:
            await store.ensure_bucket()
        app[STORE] = store
        app[READY_CHECKS]["s3"] = store.ping
        yield

    return store_ctx


def broker_context(settings: CommonSettings) -> CleanupContext:
    async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = Broker(settings.amqp_url, settings.amqp_exchange)
        await broker.connect()
        app[BROKER] = broker
        app[READY_CHECKS]["amqp"] = broker.ping
        yield
        await broker.close()

    return broker_ctx
