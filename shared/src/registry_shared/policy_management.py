"""Use cases of SPEC §9's management: read and replace a level's policy, set a package's PEP 792 status. The
one implementation index-api's management API and the web interface's status form both call.

Each change is stored, the caller's own caches are dropped (`on_changed`), then the change is announced
(`policy.changed` / `package.status_changed`) and awaited until every live index-api, upload-api and web
replica has dropped its cached policies (`registry_shared.replicas.AWAITED_ROLES`), so a change applies
everywhere by the time the caller answers.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .adapters.policies import scope_key
from .events import Event, PackageStatusChanged, PolicyChanged
from .logging import get_logger
from .policy.document import PolicyDocument
from .policy.status import PackageStatus

log = get_logger()


class PolicyStore(Protocol):
    """`registry_shared.adapters.policies.PolicyRepository`."""

    async def get(self, key: str) -> PolicyDocument: ...
    async def put(self, key: str, policy: PolicyDocument) -> None: ...
    async def set_status(self, status: PackageStatus) -> None: ...


class Publisher(Protocol):
    """`registry_shared.replicas.Announcer`."""

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


class PolicyManagement:
    def __init__(self, store: PolicyStore, publisher: Publisher,
                 on_changed: Callable[[], object] | None = None) -> None:
        self.store = store
        self.publisher = publisher
        self.on_changed = on_changed

    async def get(self, scope_type: str, scope_id: int | None) -> PolicyDocument:
        return await self.store.get(scope_key(scope_type, scope_id))

    async def replace(self, scope_type: str, scope_id: int | None, policy: PolicyDocument,
                      actor: dict[str, object], ip_address: str, correlation_id: str | None) -> PolicyDocument:
        await self.store.put(scope_key(scope_type, scope_id), policy)
        self._drop()
        # The routes pass only "instance", "group" or "project" (the event's Literal).
        event = PolicyChanged(scope_type=scope_type, scope_id=scope_id,  # type: ignore[arg-type]
                              actor=actor, ip_address=ip_address, policy=policy.to_json())
        await self.publisher.publish(event, correlation_id)
        log.info("policy_changed", scope_type=scope_type, scope_id=scope_id, blocked=len(policy.blocked))
        return policy

    async def set_status(self, status: PackageStatus, actor: dict[str, object], ip_address: str,
                         correlation_id: str | None) -> PackageStatus:
        await self.store.set_status(status)
        self._drop()
        await self.publisher.publish(PackageStatusChanged(
            project_id=status.project_id, name=status.name, status=status.status.value,
            reason=status.reason, actor=actor, ip_address=ip_address), correlation_id)
        log.info("package_status_changed", project_id=status.project_id, name=status.name,
                 status=status.status.value)
        return status

    def _drop(self) -> None:
        if self.on_changed is not None:
            self.on_changed()
