"""Use cases of SPEC §9's management API: read and replace a level's policy, set a package's status.

Each change is stored, then announced (`policy.changed` / `package.status_changed`) and awaited until every
live index-api and upload-api replica has dropped its cached policies, so a change applies everywhere by the
time the client hears back; this replica drops its own first.
"""
from __future__ import annotations

from typing import Protocol

from registry_shared.adapters.policies import scope_key
from registry_shared.events import Event, PackageStatusChanged, PolicyChanged
from registry_shared.logging import get_logger
from registry_shared.policy.document import PolicyDocument
from registry_shared.policy.status import PackageStatus

from .cache import PageCache
from .policy import ReadPolicy

log = get_logger()


class PolicyStore(Protocol):
    """`registry_shared.adapters.policies.PolicyRepository`."""

    async def get(self, key: str) -> PolicyDocument: ...
    async def put(self, key: str, policy: PolicyDocument) -> None: ...
    async def set_status(self, status: PackageStatus) -> None: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


class PolicyManagement:
    def __init__(self, store: PolicyStore, policy: ReadPolicy, page_cache: PageCache, publisher: Publisher) -> None:
        self.store = store
        self.policy = policy
        self.page_cache = page_cache
        self.publisher = publisher

    async def get(self, scope_type: str, scope_id: int | None) -> PolicyDocument:
        return await self.store.get(scope_key(scope_type, scope_id))

    async def replace(self, scope_type: str, scope_id: int | None, policy: PolicyDocument,
                      actor: dict[str, object], ip_address: str, correlation_id: str | None) -> PolicyDocument:
        await self.store.put(scope_key(scope_type, scope_id), policy)
        self._drop()
        await self.publisher.publish(PolicyChanged(scope_type=scope_type, scope_id=scope_id,  # type: ignore[arg-type]
                                                   actor=actor, ip_address=ip_address, policy=policy.to_json()),
                                     correlation_id)
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
        self.policy.drop()
        self.page_cache.clear()
