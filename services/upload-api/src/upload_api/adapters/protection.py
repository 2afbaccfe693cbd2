"""Protection rules for uploads (the `Protection` port), cached like the access facts and dropped with them
on `access.changed` (index-api publishes one after every rule change and waits for this replica's answer)."""
from __future__ import annotations

from registry_shared.access_cache import MISSING, TtlCache
from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.governance.protection import ProtectionRule


class CachedProtection:
    def __init__(self, repo: GovernanceRepository, ttl: float) -> None:
        self.repo = repo
        self.cache: TtlCache[int, list[ProtectionRule]] = TtlCache(ttl)

    async def rules(self, project_id: int) -> list[ProtectionRule]:
        found = self.cache.get(project_id)
        if found is MISSING:
            found = await self.repo.rules(project_id)
            self.cache.put(project_id, found)
        return found

    def clear(self) -> int:
        return self.cache.clear()
