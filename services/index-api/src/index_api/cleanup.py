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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from packaging.version import InvalidVersion, Version

from registry_shared.errors import ParameterInvalid
from registry_shared.governance.protection import ProtectionRule, delete_protected
from registry_shared.logging import get_logger
from registry_shared.pages import version_key
from registry_shared.records.packages import PackageRecord

from .management import PackageManagement

log = get_logger()
LEASE = "cleanup"
SYSTEM: dict[str, object] = {"principal": "system", "user_id": None, "credential_id": None}
FIELDS = ("keep_n_latest_versions", "delete_prereleases_older_than_days", "delete_not_downloaded_for_days")


class CleanupStore(Protocol):
    async def cleanup_policy(self, project_id: int) -> dict[str, Any] | None: ...
    async def put_cleanup_policy(self, project_id: int, policy: dict[str, Any]) -> None: ...
    async def enabled_cleanup_policies(self) -> list[dict[str, Any]]: ...
    async def take_lease(self, name: str, holder: str, every: timedelta) -> bool: ...
    async def rules(self, project_id: int) -> list[ProtectionRule]: ...
    async def last_downloads(self, package_ids: list[int]) -> dict[int, datetime]: ...
    async def project(self, project_id: int) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Policy:
    keep_n_latest_versions: int | None = None
    delete_prereleases_older_than_days: int | None = None
    delete_not_downloaded_for_days: int | None = None
    enabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Policy:
        doc = doc or {}
        return cls(**{k: doc.get(k) for k in FIELDS}, enabled=bool(doc.get("enabled")))


def updated_policy(policy: Policy, fields: dict[str, Any]) -> Policy:
    """`policy` with the PUT's fields applied: numbers are integers (keep ≥ 1, days ≥ 0) or null."""
    values = policy.to_json()
    for name in FIELDS:
        if name in fields:
            value = fields[name]
            if value in (None, ""):
                values[name] = None
                continue
            try:
                number = int(value)
            except (TypeError, ValueError) as exc:
                raise ParameterInvalid(name) from exc
            if isinstance(value, bool) or str(value).strip() != str(number) or number < (
                    1 if name == "keep_n_latest_versions" else 0):
                raise ParameterInvalid(name)
            values[name] = number
    if "enabled" in fields:
        raw = fields["enabled"]
        if isinstance(raw, bool):
            values["enabled"] = raw
        elif str(raw).lower() in ("true", "false"):
            values["enabled"] = str(raw).lower() == "true"
        else:
            raise ParameterInvalid("enabled")
    return Policy(**values)


def _prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def chosen(policy: Policy, packages: list[PackageRecord], rules: list[ProtectionRule],
           last_downloads: dict[int, datetime], now: datetime) -> list[PackageRecord]:
    """The releases the policy deletes, by name then version, highest first."""
    by_name: dict[str, list[PackageRecord]] = {}
    for package in packages:
        by_name.setdefault(package.name, []).append(package)
    doomed: list[PackageRecord] = []
    for name, releases in sorted(by_name.items()):
        if delete_protected(rules, name) or delete_protected(rules, releases[0].shown_name):
            continue
        releases.sort(key=lambda p: version_key(p.shown_version), reverse=True)
        picked = []
        for rank, package in enumerate(releases):
            created = package.created_at or now
            seen = last_downloads.get(package.id, created)
            if ((policy.keep_n_latest_versions is not None and rank >= policy.keep_n_latest_versions)
                    or (policy.delete_prereleases_older_than_days is not None and _prerelease(package.shown_version)
                        and created < now - timedelta(days=policy.delete_prereleases_older_than_days))
                    or (policy.delete_not_downloaded_for_days is not None
                        and seen < now - timedelta(days=policy.delete_not_downloaded_for_days))):
                picked.append(package)
        if len(picked) == len(releases):  # never the only remaining version: keep the highest
            picked = picked[1:]
        doomed.extend(picked)
    return doomed


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

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
