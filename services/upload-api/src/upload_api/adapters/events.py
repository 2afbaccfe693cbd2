"""Keeping the access caches true: this replica's private queue carries `token.revoked` and
`access.changed` (each drops every cached credential and decision) and `policy.changed` /
`package.status_changed` (each drops the cached policies); then answers the publisher
(registry_shared.replicas), so `registry-admin token revoke` returns only once no upload-api replica
would still accept the token. A reconnect drops everything too (events may have been missed)."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Protocol

import structlog

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.events import Event
from registry_shared.replicas import UPLOAD_ROLE, ReplicaRegistry, serving_as_replica
from registry_shared.topology import CREDENTIAL_BINDINGS, POLICY_BINDINGS

from .access import CachedAccess
from .policies import UploadPolicies

log = structlog.get_logger()


class Clearable(Protocol):
    def clear(self) -> int: ...


@contextlib.asynccontextmanager
async def access_events(broker: Broker, mongo: Mongo, access: CachedAccess, replica_id: str,
                        policies: UploadPolicies | None = None, *others: Clearable) -> AsyncIterator[None]:
    """Subscribe before serving, then announce the replica (heartbeats) while the block runs."""

    def drop(event: Event) -> None:
        if event.kind in POLICY_BINDINGS:
            if policies is not None:
                policies.clear()
            log.info("policy_cache_dropped", reason=event.kind)
        else:
            log.info("access_cache_dropped", reason=event.kind,
                     dropped=access.clear() + sum(other.clear() for other in others))

    async with serving_as_replica(broker, ReplicaRegistry(mongo), replica_id, UPLOAD_ROLE,
                                  (*CREDENTIAL_BINDINGS, *POLICY_BINDINGS), drop,
                                  partial(_forget, access, policies, others)):
        yield


def _forget(access: CachedAccess, policies: UploadPolicies | None, others: tuple[Clearable, ...]) -> None:
    """After a reconnect events may have been missed: drop every cache they keep true."""
    access.clear()
    for other in others:
        other.clear()
    if policies is not None:
        policies.clear()
