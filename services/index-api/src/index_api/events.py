"""Cache invalidation from events: each replica's private queue carries `index.changed`,
`token.revoked` and `access.changed`. Handlers are plain functions looked up by event type."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aio_pika.abc import AbstractIncomingMessage

from registry_shared.events import (
    AccessChanged,
    Event,
    IndexChanged,
    PackageStatusChanged,
    PolicyChanged,
    TokenRevoked,
)
from registry_shared.logging import get_logger
from registry_shared.replicas import consume_replica_event
from registry_shared.topology import INDEX_REPLICA_BINDINGS

from .access import AccessCaches
from .cache import PageCache
from .metrics import CACHE_INVALIDATIONS
from .policy import ReadPolicy

log = get_logger()
BINDINGS = INDEX_REPLICA_BINDINGS


class Invalidator:
    def __init__(self, pages: PageCache, caches: AccessCaches, policy: ReadPolicy | None = None) -> None:
        self.pages = pages
        self.caches = caches
        self.policy = policy
        self._handlers: dict[type[Event], Callable[[Event], None]] = {
            IndexChanged: self.index_changed,  # type: ignore[dict-item]
            TokenRevoked: self.credentials_changed,
            AccessChanged: self.credentials_changed,
            PolicyChanged: self.policy_changed,
            PackageStatusChanged: self.policy_changed,
        }

    def handle(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)
            CACHE_INVALIDATIONS.labels(event.kind).inc()

    def index_changed(self, event: IndexChanged) -> None:
        scopes = [(s.kind, s.id) for s in event.scopes]
        dropped = self.pages.invalidate(scopes, event.names)
        # A group's first file from a new project changes which projects the group holds.
        if any(kind == "group" for kind, _ in scopes):
            self.caches.readable.clear()
            if self.policy is not None:
                self.policy.drop_groups()
        log.info("index_cache_invalidated", scopes=[f"{k}:{i}" for k, i in scopes], names=list(event.names),
                 dropped=dropped)

    def credentials_changed(self, event: Event) -> None:
        dropped = self.caches.clear()
        if self.policy is not None:
            self.policy.drop_groups()
        log.info("access_cache_dropped", reason=event.kind, dropped=dropped)

    def policy_changed(self, event: Event) -> None:
        """A policy or a package status changed: every page may show other files now (an instance policy
        reaches every scope), so drop the policies and every rendered page."""
        if self.policy is not None:
            self.policy.drop()
        dropped = self.pages.clear()
        log.info("policy_cache_dropped", reason=event.kind, dropped=dropped)

    def reconnected(self) -> None:
        """Events may have been missed while the broker was away: forget everything."""
        if self.policy is not None:
            self.policy.drop()
        dropped = self.pages.clear() + self.caches.clear()
        log.warning("caches_dropped_after_reconnect", dropped=dropped)


async def consume(message: AbstractIncomingMessage, invalidator: Invalidator,
                  applied: Callable[[AbstractIncomingMessage], Awaitable[None]] | None = None) -> None:
    """One message: acked once handled; an unreadable one is logged and dropped (nothing to retry).
    An `index.changed` that asks for an answer (`reply_to`) gets one once applied (`applied`)."""
    await consume_replica_event(message, invalidator.handle, applied)
