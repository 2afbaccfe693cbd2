"""The cleanup policy (SPEC §10): which releases of a project a policy deletes, and running it.

Rules (each null = off): keep the `keep_n_latest_versions` highest versions (PEP 440) of each name; delete
pre-releases older than `delete_prereleases_older_than_days`; delete releases not downloaded (or, never
downloaded, uploaded) for `delete_not_downloaded_for_days`. Never a release whose name a delete protection
rule covers, nor the last remaining version of a name. Deletions go through the Packages API's delete use
case (E13), so pages, objects and events follow. Scheduled every CLEANUP_INTERVAL by whichever index-api
replica takes the period's lease in MongoDB.
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from registry_shared.governance.cleanup import Policy, chosen, updated_policy
from registry_shared.governance.protection import ProtectionRule
from registry_shared.logging import get_logger
from registry_shared.records.packages import PackageRecord
from registry_shared.tasks import running

from .management import PackageManagement

log = get_logger()
LEASE = "cleanup"
SYSTEM: dict[str, object] = {"principal": "system", "user_id": None, "credential_id": None}


class CleanupStore(Protocol):
    async def cleanup_policy(self, project_id: int) -> dict[str, Any] | None: ...
    async def put_cleanup_policy(self, project_id: int, policy: dict[str, Any]) -> None: ...
    async def enabled_cleanup_policies(self) -> list[dict[str, Any]]: ...
    async def take_lease(self, name: str, holder: str, every: timedelta) -> bool: ...
    async def rules(self, project_id: int) -> list[ProtectionRule]: ...
    async def last_downloads(self, package_ids: list[int]) -> dict[int, datetime]: ...
    async def project(self, project_id: int) -> dict[str, Any] | None: ...


class CleanupService:
    def __init__(self, store: CleanupStore, management: PackageManagement) -> None:
        self.store = store
        self.management = management

    async def policy(self, project_id: int) -> Policy:
        return Policy.from_doc(await self.store.cleanup_policy(project_id))

    async def put_policy(self, project_id: int, fields: dict[str, Any]) -> Policy:
        policy = updated_policy(await self.policy(project_id), fields)
        await self.store.put_cleanup_policy(project_id, policy.to_json())
        return policy

    async def run(self, project: dict[str, Any], *, dry_run: bool, actor: dict[str, object] | None = None,
                  ip_address: str = "", correlation_id: str | None = None) -> list[PackageRecord]:
        """Apply the project's policy (whether enabled or not: a run is asked for); what it deletes."""
        project_id = int(project["_id"])
        policy = await self.policy(project_id)
        packages = await self.management.repo.listed_packages([project_id])
        rules = await self.store.rules(project_id)
        last = await self.store.last_downloads([p.id for p in packages])
        doomed = chosen(policy, packages, rules, last, datetime.now(UTC))
        if not dry_run:
            for package in doomed:
                await self.management.delete_package(project, package.id, correlation_id,
                                                     actor=actor or SYSTEM, ip_address=ip_address)
        log.info("cleanup_policy_run", project_id=project_id, dry_run=dry_run,
                 deleted=[f"{p.name}=={p.shown_version}" for p in doomed])
        return doomed

    async def run_scheduled(self, holder: str, every: timedelta) -> int:
        """Run every enabled policy, if this replica holds this period's lease. How many releases went."""
        if not await self.store.take_lease(LEASE, holder, every):
            return 0
        deleted = 0
        for doc in await self.store.enabled_cleanup_policies():
            project = await self.store.project(int(doc["_id"]))
            if project is None:
                continue
            try:
                deleted += len(await self.run(project, dry_run=False))
            except Exception as exc:  # noqa: BLE001 - one project's failure must not stop the others
                log.error("cleanup_policy_failed", project_id=doc["_id"], error=type(exc).__name__)
        return deleted

    @contextlib.asynccontextmanager
    async def scheduled(self, interval: float) -> AsyncIterator[None]:
        """Try the lease every minute (or `interval`, if shorter); one replica runs per period."""
        holder = uuid.uuid4().hex
        every = timedelta(seconds=interval)

        async def loop() -> None:
            while True:
                try:
                    await self.run_scheduled(holder, every)
                except Exception as exc:  # noqa: BLE001 - the next period tries again
                    log.warning("cleanup_schedule_failed", error=type(exc).__name__)
                await asyncio.sleep(min(interval, 60.0))

        async with running(loop()):
            yield
