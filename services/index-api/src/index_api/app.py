"""The application factory: resources in cleanup contexts (connected in order, closed in reverse)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.pages import PageBuilder
from registry_shared.web.app import READY_CHECKS, create_base_app

from .access import AccessCaches, ReadAccess
from .adapters.management import MongoManagementRepository
from .adapters.objects import S3Blobs
from .adapters.reads import MongoReadRepository
from .cache import CachedBlobs, PageCache
from .errors import error_headers
from .events import BINDINGS, Invalidator, consume
from .keys import ACCESS, ACCESS_CACHES, BROKER, FORWARDER, MANAGEMENT, MONGO, PAGE_CACHE, SERVICE, SETTINGS, STORE
from .management import PackageManagement
from .proxy_client import ProxyForwarder, proxy_session
from .routes import setup_routes
from .service import ReadService, RedirectForwarder
from .settings import IndexSettings


def create_app(settings: IndexSettings) -> web.Application:
    app = create_base_app("index-api")
    app.middlewares.append(error_headers)
    app[SETTINGS] = settings
    app[PAGE_CACHE] = PageCache()
    app[ACCESS_CACHES] = AccessCaches(ttl=settings.auth_cache_ttl)
    app.cleanup_ctx.append(mongo_ctx)
    app.cleanup_ctx.append(object_store_ctx)
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(forwarder_ctx)
    app.on_startup.append(wire_services)  # runs after every cleanup context has connected
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


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Subscribe this replica's private queue before serving, so no change goes unseen."""
    settings = app[SETTINGS]
    broker = Broker(settings.amqp_url, settings.amqp_exchange)
    await broker.connect()
    invalidator = Invalidator(app[PAGE_CACHE], app[ACCESS_CACHES])
    assert broker.connection is not None
    broker.connection.reconnect_callbacks.add(lambda _connection: invalidator.reconnected())
    queue = await broker.declare_private_queue(BINDINGS)
    await broker.consume(queue, partial(consume, invalidator=invalidator))
    app[BROKER] = broker
    app[READY_CHECKS]["broker"] = broker.ping
    yield
    await broker.close()


async def forwarder_ctx(app: web.Application) -> AsyncIterator[None]:
    """Names a scope lacks (with forwarding on): through the proxy service (PROXY_MODE=cache, the default),
    or GitLab's bare 302 to pypi.org (PROXY_MODE=redirect)."""
    settings = app[SETTINGS]
    if settings.proxy_mode == "redirect":
        app[FORWARDER] = RedirectForwarder()
        yield
        return
    session = proxy_session()
    app[FORWARDER] = ProxyForwarder(session, settings.proxy_url)
    yield
    await session.close()


async def wire_services(app: web.Application) -> None:
    settings = app[SETTINGS]
    mongo = app[MONGO]
    repo = MongoReadRepository(mongo)
    caches = app[ACCESS_CACHES]
    app[ACCESS] = ReadAccess(repo, CredentialResolver(repo.tenancy),
                             AccessFactsService(repo.tenancy), caches)
    app[SERVICE] = ReadService(repo, CachedBlobs(S3Blobs(app[STORE])), app[PAGE_CACHE], caches, app[FORWARDER],
                               settings.registry_external_url, redirect_files=settings.index_file_redirect)
    app[MANAGEMENT] = PackageManagement(MongoManagementRepository(mongo), PageBuilder(mongo, PackageRepository(mongo)),
                                        app[PAGE_CACHE], app[BROKER])
