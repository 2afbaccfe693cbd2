"""Projects and credentials for uploads, cached like index-api's (registry_shared.access_cache).

Every cache is dropped by `token.revoked` / `access.changed` (adapters/events.py); misses are not cached,
so a project created a moment ago is found.
"""
from __future__ import annotations

from typing import Any

from registry_shared.access_cache import MISSING, TtlCache, authenticate
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.domain.access import AccessFacts, Principal


class CachedAccess:
    """The `Access` port (ports.py)."""

    def __init__(self, tenancy: TenancyRepository, ttl: float) -> None:
        self.tenancy = tenancy
        self.resolver = CredentialResolver(tenancy)
        self.facts = AccessFactsService(tenancy)
        self.credentials: TtlCache[Any, Any] = TtlCache(ttl)
        self.projects: TtlCache[str, dict[str, Any]] = TtlCache(ttl)
        self.project_facts_cache: TtlCache[tuple[Principal, int], AccessFacts] = TtlCache(ttl)

    async def find_project(self, ref: str) -> dict[str, Any] | None:
        key = ref.lower()
        cached = self.projects.get(key)
        if cached is not MISSING:
            return cached
        project = await self.tenancy.find_project(ref)
        if project is not None:
            self.projects.put(key, project)
        return project

    async def authenticate(self, username: str | None, password: str | None) -> Principal:
        return await authenticate(self.resolver, self.credentials, username, password)

    async def project_facts(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        key = (principal, project["_id"])
        facts = self.project_facts_cache.get(key)
        if facts is MISSING:
            facts = await self.facts.for_project(principal, project)
            self.project_facts_cache.put(key, facts)
        return facts

    def clear(self) -> int:
        return sum(c.clear() for c in (self.credentials, self.projects, self.project_facts_cache))
