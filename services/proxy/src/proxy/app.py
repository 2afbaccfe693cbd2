"""The proxy's application factory. Mongo and S3 are connected now because readiness (and soon the
pull-through cache) depends on them."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.web.app import READY_CHECKS, create_base_app

from .routes import setup_routes
from .settings import ProxySettings

SETTINGS = web.AppKey("settings", ProxySettings)
MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("object_store", ObjectStore)


def create_app(settings: ProxySettings) -> web.Application:
    app = create_base_app("proxy")
    app[SETTINGS] = settings
    app.cleanup_ctx.append(mongo_ctx)
    app.cleanup_ctx.append(object_store_ctx)
    setup_routes(app)
    return app


async def mongo_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
    app[MONGO] = mongo
    app[READY_CHECKS]["mongo"] = mongo.ping
    yield
    await mongo.close()


async def object_store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = ObjectStore.from_settings(settings)
    app[STORE] = store
    app[READY_CHECKS]["s3"] = store.ping
    yield
