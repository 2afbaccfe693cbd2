"""The application factory: resources in cleanup contexts (connected in order, closed in reverse)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.policies import PolicyBook, PolicyRepository
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.governance.service import Governance
from registry_shared.governance.yank import YankService
from registry_shared.pages import PageBuilder
from registry_shared.replicas import ROLE, Announcer, ReplicaRegistry, acknowledge, heartbeat, replica_name
from registry_shared.web.app import create_base_app
from registry_shared.web.contexts import broker_context, mongo_context, store_context

from .access import AccessCaches, ReadAccess
from .adapters.management import MongoManagementRepository
from .adapters.objects import S3Blobs
from .adapters.reads import MongoReadRepository
from .cache import CachedBlobs, PageCache
from .cleanup import CleanupService
from .downloads import DownloadCounter
from .events import BINDINGS, Invalidator, consume
from .keys import (
    ACCESS,
    ACCESS_CACHES,
    ANNOUNCER,
    BROKER,
    CLEANUP,
    DOWNLOADS,
    FORWARDER,
    GOVERNANCE,
    MANAGEMENT,
    MONGO,
    PAGE_CACHE,
    POLICY,
    POLICY_ADMIN,
    SERVICE,
    SETTINGS,
    STORE,
    YANK,
)
from .management import PackageManagement
from .policy import ReadPolicy
from .policy_management import PolicyManagement
from .proxy_client import ProxyForwarder, proxy_session
from .routes import setup_routes
from .service import ReadService, RedirectForwarder
from .settings import IndexSettings


def create_app(settings: IndexSettings) -> web.Application:
    app = create_base_app("index-api")
    app[SETTINGS] = settings
    app[PAGE_CACHE] = PageCache()
    app[ACCESS_CACHES] = AccessCaches(ttl=settings.auth_cache_ttl)
    app.cleanup_ctx.extend([mongo_context(settings), store_context(settings), broker_context(settings),
                            subscription_ctx, forwarder_ctx, governance_ctx])
    app.on_startup.append(wire_services)  # runs after every cleanup context has connected
    setup_routes(app)
    return app


async def subscription_ctx(app: web.Application) -> AsyncIterator[None]:
    """Subscribe this replica's private queue before serving, so no change goes unseen; then announce
    the replica (heartbeats), so whoever publishes an `index.changed` waits for its answer."""
    broker = app[BROKER]
    app[POLICY] = ReadPolicy(PolicyBook(PolicyRepository(app[MONGO])), MongoReadRepository(app[MONGO]))
    invalidator = Invalidator(app[PAGE_CACHE], app[ACCESS_CACHES], app[POLICY])
    assert broker.connection is not None
    broker.connection.reconnect_callbacks.add(lambda _connection: invalidator.reconnected())
    replica = replica_name(app[SETTINGS].replica_id, ROLE)
    queue = await broker.declare_private_queue(BINDINGS)
    await broker.consume(queue, partial(consume, invalidator=invalidator,
                                        applied=partial(acknowledge, broker, replica=replica)))
    registry = ReplicaRegistry(app[MONGO])
    announcer = Announcer(broker, registry, app[SETTINGS].index_applied_timeout)
    await announcer.start()
    app[ANNOUNCER] = announcer
    async with heartbeat(registry, replica, broker=broker):
        yield


async def forwarder_ctx(app: web.Application) -> AsyncIterator[None]:
    """Names a scope lacks (with forwarding on): through the proxy service (PROXY_MODE=cache, the default),
    or GitLab's bare 302 to pypi.org (PROXY_MODE=redirect)."""
    settings = app[SETTINGS]
    if settings.proxy_mode == "redirect":
        app[FORWARDER] = RedirectForwarder()
        yield
        return
    session = proxy_session()
    app[FORWARDER] = ProxyForwarder(session, settings.proxy_url, settings.registry_external_url)
    yield
    await session.close()


async def governance_ctx(app: web.Application) -> AsyncIterator[None]:
    """SPEC §10's background work: download counts reported every DOWNLOAD_FLUSH_INTERVAL (a last time on
    shutdown), and the cleanup policies' schedule (one replica per period, by a lease in MongoDB)."""
    settings = app[SETTINGS]
    app[DOWNLOADS] = counter = DownloadCounter(app[BROKER], settings.download_flush_interval)
    mongo = app[MONGO]
    packages = PackageRepository(mongo)
    management = PackageManagement(MongoManagementRepository(mongo), PageBuilder(mongo, packages), app[PAGE_CACHE],
                                   app[ANNOUNCER])
    governance_repo = GovernanceRepository(mongo)
    app[MANAGEMENT] = management
    app[GOVERNANCE] = Governance(governance_repo, app[ANNOUNCER],
                                 allow_local_hooks=settings.webhook_allow_local_network)
    app[YANK] = YankService(governance_repo, PageBuilder(mongo, packages), app[ANNOUNCER])
    app[CLEANUP] = cleanup = CleanupService(governance_repo, management)
    async with counter.running(), cleanup.scheduled(settings.cleanup_interval):
        yield


async def wire_services(app: web.Application) -> None:
    settings = app[SETTINGS]
    mongo = app[MONGO]
    repo = MongoReadRepository(mongo)
    caches = app[ACCESS_CACHES]
    app[ACCESS] = ReadAccess(repo, CredentialResolver(repo.tenancy),
                             AccessFactsService(repo.tenancy), caches)
    app[SERVICE] = ReadService(repo, CachedBlobs(S3Blobs(app[STORE])), app[PAGE_CACHE], caches, app[FORWARDER],
                               settings.registry_external_url, redirect_files=settings.index_file_redirect,
                               gateway_min_size=settings.index_send_file_min_size, policy=app[POLICY])
    app[POLICY_ADMIN] = PolicyManagement(PolicyRepository(mongo), app[POLICY], app[PAGE_CACHE], app[ANNOUNCER])
