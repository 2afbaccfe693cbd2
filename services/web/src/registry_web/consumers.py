"""This replica's private queue: `token.revoked` and `access.changed` drop its token and access caches,
then it answers the publisher (registry-admin waits for every live web replica, as for index-api's), so a
revoked token's session is signed out on its very next request; `index.changed` drops the cached package
pages of the names it lists, and this replica answers it too: an upload's 201, a delete's or a yank's
answer comes once no web replica shows the old page either; `policy.changed` and `package.status_changed`
drop its PolicyBook (the status and withheld badges) and every cached page, and it answers them, so a
policy or status PUT returns once every web replica shows it."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from aio_pika.abc import AbstractIncomingMessage

from registry_shared.adapters.policies import PolicyBook
from registry_shared.events import Event, IndexChanged, PackageStatusChanged, PolicyChanged
from registry_shared.logging import get_logger
from registry_shared.replicas import consume_replica_event
from registry_shared.topology import INDEX_REPLICA_BINDINGS

from .access import WebCaches

log = get_logger()
# index.changed, token.revoked, access.changed, policy.changed, package.status_changed (POLICY_BINDINGS)
BINDINGS = INDEX_REPLICA_BINDINGS


async def consume(message: AbstractIncomingMessage, caches: WebCaches, book: PolicyBook,
                  applied: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> None:
    await consume_replica_event(message, partial(drop, caches, book), applied)


def drop(caches: WebCaches, book: PolicyBook, event: Event) -> None:
    """What one event makes stale in this replica."""
    if isinstance(event, IndexChanged):
        projects = {scope.id for scope in event.scopes if scope.kind == "project"}
        dropped = caches.pages.invalidate(projects, set(event.names))
        log.info("web_pages_dropped", projects=sorted(projects), names=event.names, dropped=dropped)
    elif isinstance(event, PolicyChanged | PackageStatusChanged):
        book.drop()
        dropped = caches.pages.clear()
        log.info("web_policy_dropped", reason=event.kind, dropped=dropped)
    else:
        dropped = caches.clear()
        log.info("access_cache_dropped", reason=event.kind, dropped=dropped)
