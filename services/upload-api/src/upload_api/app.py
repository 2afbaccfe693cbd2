"""The upload-api application factory, with one cleanup context per external resource."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.web.app import READY_CHECKS, create_base_app

from .routes import setup_routes
from .service import UploadService
from .settings import UploadSettings
from .verdicts import VerdictWaiter
from .views import UPLOAD_SERVICE

MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("store", ObjectStore)
BROKER = web.AppKey("broker", Broker)
WORKER_BINDINGS = ("distribution.stored", "file.deleted")


def create_app(settings: UploadSettings) -> web.Application:
    app = create_base_app("upload-api")
    setup_routes(app)

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
        # Declared here too, so an upload accepted before any worker started is queued, not dropped.
        await broker.declare_work_queue(f"{settings.amqp_exchange}.metadata-worker", WORKER_BINDINGS, prefetch=0)
        verdicts = VerdictWaiter()
        await verdicts.start(broker)
        app[BROKER] = broker
        app[READY_CHECKS]["amqp"] = broker.ping
        app[UPLOAD_SERVICE] = UploadService(
            TenancyRepository(app[MONGO]), PackageRepository(app[MONGO]), app[STORE], broker, verdicts,
            max_size=settings.upload_max_file_size, part_size=settings.upload_part_size,
            verdict_timeout=settings.upload_verdict_timeout,
        )
        yield
        await broker.close()

    app.cleanup_ctx.extend([mongo_ctx, store_ctx, broker_ctx])
    return app
