"""This replica's private queue: `token.revoked` and `access.changed` drop its token and access caches,
then it answers the publisher (registry-admin waits for every live web replica, as for index-api's), so a
revoked token's session is signed out on its very next request."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.events import parse_event
from registry_shared.logging import get_logger
from registry_shared.topology import CREDENTIAL_BINDINGS

from .access import WebCaches

log = get_logger()
BINDINGS = CREDENTIAL_BINDINGS


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
            dropped = caches.clear()
            log.info("access_cache_dropped", reason=event.kind, dropped=dropped)
            try:
                await applied(message)
            except Exception as exc:  # noqa: BLE001 - the announcer's wait is bounded; caches are dropped
                log.warning("index_applied_not_sent", error=type(exc).__name__)
