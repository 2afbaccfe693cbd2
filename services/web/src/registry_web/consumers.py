"""This replica's private queue: `token.revoked` and `access.changed` drop its token and access caches,
then it answers the publisher (registry-admin waits for every live web replica, as for index-api's), so a
revoked token's session is signed out on its very next request; `index.changed` drops the cached package
pages of the names it lists, and this replica answers it too: an upload's 201 or a delete's answer comes
once no web replica shows the old page either."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.events import IndexChanged, parse_event
from registry_shared.logging import get_logger
from registry_shared.topology import INDEX_REPLICA_BINDINGS

from .access import WebCaches

log = get_logger()
BINDINGS = INDEX_REPLICA_BINDINGS  # index.changed, token.revoked, access.changed


async def consume(message: AbstractIncomingMessage, caches: WebCaches,
                  applied: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> None:
    async with message.process(requeue=False, ignore_processed=True):
        context = {"correlation_id": message.correlation_id} if message.correlation_id else {}
        with structlog.contextvars.bound_contextvars(**context):
            try:
                event = parse_event(message.type, message.body)
            except ValueError as exc:
                log.warning("event_unreadable", type=message.type, error=str(exc)[:200])
                return
            if isinstance(event, IndexChanged):
                projects = {scope.id for scope in event.scopes if scope.kind == "project"}
                dropped = caches.pages.invalidate(projects, set(event.names))
                log.info("web_pages_dropped", projects=sorted(projects), names=event.names, dropped=dropped)
            else:
                dropped = caches.clear()
                log.info("access_cache_dropped", reason=event.kind, dropped=dropped)
            try:
                await applied(message)
            except Exception as exc:  # noqa: BLE001 - the announcer's wait is bounded; caches are dropped
                log.warning("index_applied_not_sent", error=type(exc).__name__)
