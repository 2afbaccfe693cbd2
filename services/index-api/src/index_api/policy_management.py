"""SPEC §9's management use cases for this service: `registry_shared.policy_management.PolicyManagement`
(shared with the web interface's status form), dropping this replica's policies and rendered pages first."""
from __future__ import annotations

from registry_shared.policy_management import PolicyManagement as SharedPolicyManagement
from registry_shared.policy_management import PolicyStore, Publisher

from .cache import PageCache
from .policy import ReadPolicy

__all__ = ["PolicyManagement", "PolicyStore", "Publisher"]


class PolicyManagement(SharedPolicyManagement):
    def __init__(self, store: PolicyStore, policy: ReadPolicy, page_cache: PageCache, publisher: Publisher) -> None:
        super().__init__(store, publisher, on_changed=self._drop_caches)
        self.policy = policy
        self.page_cache = page_cache

    def _drop_caches(self) -> None:
        self.policy.drop()
        self.page_cache.clear()
