"""The upload-api application factory, with one cleanup context per external resource."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.policies import PolicyBook, PolicyRepository
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.inspection import Expected, StreamingInspector
from registry_shared.topology import WORKER_BINDINGS, worker_queue
from registry_shared.web.app import REASON_PHRASES, create_base_app
from registry_shared.web.contexts import BROKER, MONGO, STORE, broker_context, mongo_context, store_context

from .adapters.access import CachedAccess
from .adapters.events import access_events
from .adapters.messaging import VerdictWaiter
from .adapters.objects import S3Blobs
from .adapters.policies import UploadPolicies
from .adapters.protection import CachedProtection
from .routes import setup_routes
from .service import UploadService
from .settings import UploadSettings
from .views import UPLOAD_SERVICE


def inspector(filename: str, name: str, version: str, display_name: str, display_version: str) -> StreamingInspector:
    """Every upload's bytes are judged as they stream (DESIGN.md "Upload", step 2)."""
    return StreamingInspector(filename, Expected(name, version, display_name, display_version))


def create_app(settings: UploadSettings) -> web.Application:
    app = create_base_app("upload-api")
    app[REASON_PHRASES] = True  # every 4xx says why in its status line too (SPEC §4)
    setup_routes(app)

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        broker = app[BROKER]
        # Declared here too, so an upload accepted before any worker started is queued, not dropped.
        await broker.declare_work_queue(worker_queue(settings.amqp_exchange), WORKER_BINDINGS, prefetch=0)
        verdicts = VerdictWaiter(settings.index_applied_timeout)
        await verdicts.start(broker)
        access = CachedAccess(TenancyRepository(app[MONGO]), settings.auth_cache_ttl)
        policies = UploadPolicies(PolicyBook(PolicyRepository(app[MONGO])))
        protection = CachedProtection(GovernanceRepository(app[MONGO]), settings.auth_cache_ttl)
        app[UPLOAD_SERVICE] = UploadService(
            access, PackageRepository(app[MONGO]), S3Blobs(app[STORE], settings.upload_part_size), broker, verdicts,
            max_size=settings.upload_max_file_size, verdict_timeout=settings.upload_verdict_timeout,
            lease=settings.upload_reservation_lease, inspector=inspector, policies=policies, protection=protection,
        )
        async with access_events(broker, app[MONGO], access, settings.replica_id, policies, protection):
            yield

    app.cleanup_ctx.extend([mongo_context(settings, ensure_indexes=True), store_context(settings, ensure_bucket=True),
                            broker_context(settings), service_ctx])
    return app
