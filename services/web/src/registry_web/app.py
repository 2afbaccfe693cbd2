"""The application factory: resources in cleanup contexts (connected in order, closed in reverse)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from registry_shared.adapters.deletion import MongoDeletionRepository
from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.policies import PolicyBook, PolicyRepository
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.deletion import PackageDeletion
from registry_shared.governance.service import Governance
from registry_shared.governance.yank import YankService
from registry_shared.pages import PageBuilder
from registry_shared.policy_management import PolicyManagement
from registry_shared.replicas import WEB_ROLE, Announcer, ReplicaRegistry, acknowledge, heartbeat, replica_name
from registry_shared.web.app import create_base_app
from registry_shared.web.contexts import broker_context, mongo_context

from .access import WebAccess, WebCaches
from .adapters.mongo import MongoCatalog, MongoSessions
from .consumers import BINDINGS, consume
from .keys import ACCESS, BROKER, CACHES, CATALOG, MONGO, SESSIONS, SETTINGS, TEMPLATES
from .middleware import csrf, html_errors, visitor
from .rendering import templates
from .routes import setup_routes
from .service import UseCases, WebCatalog
from .sessions import Sessions
from .settings import WebSettings


def create_app(settings: WebSettings) -> web.Application:
    app = create_base_app("web")
    app.middlewares.extend([visitor, html_errors, csrf])  # inside the common request context
    app[SETTINGS] = settings
    app[CACHES] = WebCaches(ttl=settings.auth_cache_ttl)
    app[TEMPLATES] = templates()
    app.cleanup_ctx.extend([mongo_context(settings), broker_context(settings), subscription_ctx])
    setup_routes(app)
    return app


async def subscription_ctx(app: web.Application) -> AsyncIterator[None]:
    """Subscribe to credential events before serving, announce the replica (heartbeats) so registry-admin
    waits for it, and wire the use cases."""
    broker, mongo, settings = app[BROKER], app[MONGO], app[SETTINGS]
    caches = app[CACHES]
    book = PolicyBook(PolicyRepository(mongo))

    def forget_all() -> None:
        caches.clear()
        caches.pages.clear()
        book.drop()

    assert broker.connection is not None
    # Events may have been missed while the broker was away: forget everything.
    broker.connection.reconnect_callbacks.add(lambda _connection: forget_all())
    replica = replica_name(settings.replica_id, WEB_ROLE)
    queue = await broker.declare_private_queue(BINDINGS)
    await broker.consume(queue, partial(consume, caches=caches, book=book,
                                        applied=partial(acknowledge, broker, replica=replica)))
    registry = ReplicaRegistry(mongo)
    announcer = Announcer(broker, registry, settings.index_applied_timeout)
    await announcer.start()
    tenancy = TenancyRepository(mongo)
    catalog = MongoCatalog(mongo)
    access = WebAccess(catalog, CredentialResolver(tenancy), AccessFactsService(tenancy), caches)
    pages = PageBuilder(mongo, PackageRepository(mongo))
    deletion = PackageDeletion(MongoDeletionRepository(mongo), pages, announcer,
                               lambda scopes, name: caches.pages.invalidate(
                                   {s.id for s in scopes if s.kind == "project"}, {name}))
    governance = GovernanceRepository(mongo)

    def policy_changed() -> None:
        book.drop()
        caches.pages.clear()

    uses = UseCases(deletion=deletion,
                    governance=Governance(governance, announcer, allow_local_hooks=False),  # its protection rules only
                    yank=YankService(governance, pages, announcer),
                    policy=PolicyManagement(PolicyRepository(mongo), announcer, on_changed=policy_changed), book=book)
    app[ACCESS] = access
    app[CATALOG] = WebCatalog(catalog, access, uses, settings.registry_external_url)
    app[SESSIONS] = Sessions(MongoSessions(mongo), settings.web_session_ttl)
    async with heartbeat(registry, replica, role=WEB_ROLE, broker=broker):
        yield
