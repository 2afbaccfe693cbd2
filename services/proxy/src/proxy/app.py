"""The proxy's application factory: resources in cleanup contexts (connected in order, closed in reverse)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from registry_shared.adapters.s3 import ObjectStore
from registry_shared.web.app import READY_CHECKS, create_base_app
from registry_shared.web.contexts import mongo_context, store_context

from .adapters.objects import S3ProxyBlobs
from .adapters.store import MongoProxyStore
from .adapters.upstream_http import HttpUpstream, client_session
from .keys import FILES, MONGO, PAGES, SETTINGS, STORE
from .routes import setup_routes
from .service import FileService, PageService
from .settings import ProxySettings

__all__ = ["FILES", "MONGO", "PAGES", "SETTINGS", "STORE", "create_app"]
PREPARE_TIMEOUT = 2.0


def create_app(settings: ProxySettings) -> web.Application:
    app = create_base_app("proxy")
    app[SETTINGS] = settings
    # Indexes and bucket are ensured lazily (upstream_ctx): the proxy starts, not ready, while either is down.
    app.cleanup_ctx.extend([mongo_context(settings), store_context(settings), upstream_ctx])
    setup_routes(app)
    return app


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """The upstream client and the use cases. The bucket and indexes are ensured lazily: the proxy starts
    (and reports not ready) while MongoDB or S3 are down."""
    settings = app[SETTINGS]
    session = client_session(settings.proxy_upstream_timeout)
    store = MongoProxyStore(app[MONGO])
    upstream = HttpUpstream(session, settings.proxy_upstream_url)
    app[PAGES] = PageService(store, upstream, settings.proxy_page_ttl, settings.proxy_stale_ttl,
                             settings.registry_external_url)
    app[FILES] = files = FileService(store, upstream, S3ProxyBlobs(app[STORE]), settings.proxy_part_size)
    prepare = _Preparation(store, app[STORE])
    app[READY_CHECKS]["prepared"] = prepare
    yield
    await files.close()
    await session.close()


class _Preparation:
    """Indexes and bucket, created on the first readiness probe that finds both servers up. Bounded: while a
    server is down its own check already waits for it, and a probe must answer within its timeout."""

    def __init__(self, store: MongoProxyStore, objects: ObjectStore) -> None:
        self.store = store
        self.objects = objects
        self.done = False

    async def __call__(self) -> bool:
        if not self.done:
            async with asyncio.timeout(PREPARE_TIMEOUT):
                await self.store.ensure_indexes()
                await self.objects.ensure_bucket()
            self.done = True
        return True
