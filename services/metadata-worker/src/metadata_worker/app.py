"""The metadata-worker application: health, readiness and metrics over HTTP, and the queue consumer.

One cleanup context per external resource, connected in order and torn down in reverse; the consumer
comes last, so on SIGTERM it stops (and finishes the messages in hand) before anything it uses closes.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.adapters.packages import PackageRepository
from registry_shared.events import AuditRecorded, DownloadsCounted, Event, HooksChanged, WebhookDelivery
from registry_shared.governance.audit import BUILDERS
from registry_shared.pages import PageBuilder
from registry_shared.replicas import (
    WORKER_ROLE,
    Announcer,
    ReplicaRegistry,
    ReplicaView,
    serving_as_replica,
)
from registry_shared.topology import (
    AUDIT_BINDINGS,
    DOWNLOAD_BINDINGS,
    WEBHOOK_BINDINGS,
    WORKER_REPLICA_BINDINGS,
    audit_queue,
    download_queue,
    webhook_queue,
    worker_queue,
)
from registry_shared.web.app import create_base_app
from registry_shared.web.contexts import BROKER, MONGO, STORE, broker_context, mongo_context, store_context

from .adapters.messaging import WorkerPublisher
from .adapters.objects import S3Distributions
from .consumers import Handler, QueueConsumer
from .governance import AuditService, DownloadService, WebhookService
from .handlers import BINDINGS, Consumer
from .retries import RetryPolicy
from .service import IndexingService
from .settings import WorkerSettings

__all__ = ["BROKER", "CONSUMER", "GOVERNANCE_CONSUMERS", "MONGO", "STORE", "create_app", "retry_policy"]
CONSUMER = web.AppKey("consumer", Consumer)
REPLICA_VIEW = web.AppKey("replica_view", ReplicaView)
# Simple documents the page builder keeps as it wrote them (the next file of a name then reads none of its
# pages, the next new name none of the indexes), bounded by the file entries and names they hold (~0.65 KB
# each in memory: ~6.5 MB). Enough for the pages of a few hundred names, as `twine upload dist/*` sends the
# wheels of many projects before their sdists.
REMEMBERED_ENTRIES = 10_000
# The audit, webhook and download consumers, by queue role ("audit", "webhooks", "downloads").
GOVERNANCE_CONSUMERS = web.AppKey("governance_consumers", dict)

log = structlog.get_logger()


def retry_policy(settings: WorkerSettings) -> RetryPolicy:
    """The backoff and window of transient failures; its delays name the queues `<work queue>.retry.<s>`."""
    return RetryPolicy.from_seconds(settings.worker_retry_delay, settings.worker_retry_delay_max,
                                    settings.worker_retry_window)


def _hooks_events(hooks: WebhookService) -> Callable[[Event], None]:
    """What the worker does with its own queue's events (`WORKER_REPLICA_BINDINGS`)."""
    def drop(event: Event) -> None:
        if isinstance(event, HooksChanged):
            hooks.hooks_changed(event.scope)
            log.info("hooks_dropped", scope=event.scope)

    return drop


def create_app(settings: WorkerSettings) -> web.Application:
    app = create_base_app("metadata-worker")

    async def view_ctx(app: web.Application) -> AsyncIterator[None]:
        """The live index-api and web replicas, for announcing uploads without a lookup (ReplicaView)."""
        async with ReplicaView(ReplicaRegistry(app[MONGO])).running(app[BROKER]) as view:
            app[REPLICA_VIEW] = view
            yield

    async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
        packages = PackageRepository(app[MONGO])
        distributions = S3Distributions(app[STORE], threads=settings.worker_prefetch)
        view = app[REPLICA_VIEW]
        announcer = Announcer(app[BROKER], view.registry, settings.index_applied_timeout, view=view)
        await announcer.start()
        publisher = WorkerPublisher(app[BROKER], worker_queue(settings.amqp_exchange), announcer)
        pages = PageBuilder(app[MONGO], packages, remember_entries=REMEMBERED_ENTRIES)
        service = IndexingService(packages, distributions, pages, publisher)
        policy = retry_policy(settings)
        consumer = Consumer(service, publisher, policy)
        queue = await app[BROKER].declare_work_queue(worker_queue(settings.amqp_exchange), BINDINGS,
                                                     settings.worker_prefetch)
        retry_queues = await publisher.declare_retry_queues(policy.tiers_ms())
        await consumer.start(queue)
        app[CONSUMER] = consumer
        log.info("consumer_started", queue=queue.name, bindings=list(BINDINGS), prefetch=settings.worker_prefetch,
                 retry_queues=retry_queues, retry_window=settings.worker_retry_window)
        yield
        await consumer.stop(settings.shutdown_timeout)
        distributions.close()
        log.info("consumer_stopped", queue=queue.name)

    async def governance_ctx(app: web.Application) -> AsyncIterator[None]:
        """SPEC §10's consumers, each on its own durable queue with its own retries (consumers.py)."""
        broker, repo = app[BROKER], GovernanceRepository(app[MONGO])
        exchange = settings.amqp_exchange
        audit = AuditService(repo, broker)
        hooks = WebhookService(repo, broker, timeout=settings.webhook_timeout,
                               allow_local=settings.webhook_allow_local_network)
        downloads = DownloadService(repo)
        audit_handlers: dict[type[Event], Handler] = {kind: audit.record for kind in BUILDERS}
        hook_handlers: dict[type[Event], Handler] = {
            AuditRecorded: lambda event, _mid, cid: hooks.fan_out(event, cid),
            WebhookDelivery: lambda event, _mid, cid: hooks.deliver(event, cid)}
        download_handlers: dict[type[Event], Handler] = {
            DownloadsCounted: lambda event, _mid, cid: downloads.counted(event, cid)}
        hook_retry = RetryPolicy.from_seconds(settings.webhook_retry_delay, settings.webhook_retry_delay_max,
                                              settings.webhook_retry_window)
        consumers: dict[str, QueueConsumer] = {}
        for role, queue_name, bindings, handlers, policy in (
                ("audit", audit_queue(exchange), AUDIT_BINDINGS, audit_handlers, retry_policy(settings)),
                ("webhooks", webhook_queue(exchange), WEBHOOK_BINDINGS, hook_handlers, hook_retry),
                ("downloads", download_queue(exchange), DOWNLOAD_BINDINGS, download_handlers, retry_policy(settings))):
            publisher = WorkerPublisher(broker, queue_name)
            queue = await broker.declare_work_queue(queue_name, bindings, settings.worker_prefetch * 4)
            await publisher.declare_retry_queues(policy.tiers_ms())
            consumer = QueueConsumer(role, handlers, publisher, policy)
            await consumer.start(queue)
            consumers[role] = consumer
        app[GOVERNANCE_CONSUMERS] = consumers
        log.info("governance_consumers_started", queues=[audit_queue(exchange), webhook_queue(exchange),
                                                         download_queue(exchange)])
        # This worker as a replica (`WORKER_ROLE`) that keeps each scope's hooks, so whoever creates or deletes
        # a hook waits until it has dropped what it kept.
        async with serving_as_replica(broker, ReplicaRegistry(app[MONGO]), settings.replica_id, WORKER_ROLE,
                                      WORKER_REPLICA_BINDINGS, _hooks_events(hooks), hooks.forget_hooks):
            yield
        for consumer in consumers.values():
            await consumer.stop()
        await hooks.close()

    app.cleanup_ctx.extend([mongo_context(settings, ensure_indexes=True), store_context(settings, ensure_bucket=True),
                            broker_context(settings), governance_ctx, view_ctx, consumer_ctx])
    return app
