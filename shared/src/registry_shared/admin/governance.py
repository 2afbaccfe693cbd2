"""registry-admin's governance commands (SPEC §10): yank, protection rules, audit records, hooks and the
cleanup policy, through the same use cases as the API (registry_shared.governance). Changes are announced
like the API's (the yank's `index.changed`, a rule's `access.changed`, each awaited from the live replicas).
A cleanup *run* deletes through index-api's delete use case, so it is the API's `POST .../cleanup_policy/run`.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ..adapters.amqp import Broker
from ..adapters.governance import GovernanceRepository
from ..adapters.mongo import Mongo
from ..adapters.packages import PackageRepository
from ..governance.audit import EVENT_NAMES, record_json
from ..governance.cleanup import Policy, updated_policy
from ..governance.protection import DELETE_LEVELS, PUSH_LEVELS
from ..governance.service import AuditQuery, Governance, Who
from ..governance.webhooks import hook_json
from ..governance.yank import YankService
from ..pages import PageBuilder
from ..replicas import Announcer, ReplicaRegistry
from ..settings import CommonSettings

ADMIN_ACTOR: dict[str, object] = {"principal": "system", "user_id": None, "credential_id": None}
WHO = Who(ADMIN_ACTOR, "", None)


def add_parsers(top: Any) -> None:
    """The governance areas of `registry-admin` (build_parser calls this)."""
    package = top.add_parser("package").add_subparsers(dest="action", required=True)
    for action in ("yank", "unyank"):
        p = package.add_parser(action)
        p.add_argument("--project", required=True)
        p.add_argument("--package-id", type=int, required=True)
        if action == "yank":
            p.add_argument("--reason")

    protection = top.add_parser("protection").add_subparsers(dest="action", required=True)
    protection.add_parser("list").add_argument("--project", required=True)
    for action in ("create", "update"):
        p = protection.add_parser(action)
        p.add_argument("--project", required=True)
        if action == "update":
            p.add_argument("--id", type=int, required=True)
        p.add_argument("--pattern", required=action == "create")
        p.add_argument("--push", choices=(*PUSH_LEVELS, "none"))
        p.add_argument("--delete", choices=(*DELETE_LEVELS, "none"))
    p = protection.add_parser("delete")
    p.add_argument("--project", required=True)
    p.add_argument("--id", type=int, required=True)

    audit = top.add_parser("audit").add_subparsers(dest="action", required=True)
    p = audit.add_parser("list")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--project")
    scope.add_argument("--group")
    p.add_argument("--event-name", choices=EVENT_NAMES)
    p.add_argument("--limit", type=int, default=100)

    hook = top.add_parser("hook").add_subparsers(dest="action", required=True)
    for action in ("list", "create", "delete"):
        p = hook.add_parser(action)
        scope = p.add_mutually_exclusive_group(required=True)
        scope.add_argument("--project")
        scope.add_argument("--group")
        if action == "create":
            p.add_argument("--url", required=True)
            p.add_argument("--token", default="")
            p.add_argument("--events", default="", help="comma-separated audit event names (default: all)")
        if action == "delete":
            p.add_argument("--id", type=int, required=True)

    cleanup = top.add_parser("cleanup").add_subparsers(dest="action", required=True)
    cleanup.add_parser("show").add_argument("--project", required=True)
    p = cleanup.add_parser("set")
    p.add_argument("--project", required=True)
    p.add_argument("--keep-n-latest-versions")
    p.add_argument("--delete-prereleases-older-than-days")
    p.add_argument("--delete-not-downloaded-for-days")
    p.add_argument("--enabled", choices=("true", "false"))


class GovernanceCommands:
    """Mixed into `Commands`, which provides the settings, the database and the lookups."""

    settings: CommonSettings
    mongo: Mongo

    async def _project(self, ref: str) -> dict[str, Any]:
        raise NotImplementedError

    async def _group(self, ref: str) -> dict[str, Any]:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _publisher(self) -> AsyncIterator[Announcer]:
        """A publisher that waits for the live replicas, as the API's does; the change needs the broker."""
        broker = Broker(self.settings.amqp_url, self.settings.amqp_exchange)
        await asyncio.wait_for(broker.connect(), 5)
        try:
            announcer = Announcer(broker, ReplicaRegistry(self.mongo), self.settings.index_applied_timeout)
            await announcer.start()
            yield announcer
        finally:
            await broker.close()

    @contextlib.asynccontextmanager
    async def _governance(self) -> AsyncIterator[Governance]:
        async with self._publisher() as publisher:
            yield Governance(GovernanceRepository(self.mongo), publisher, allow_local_hooks=True)

    async def _scope(self, a: argparse.Namespace) -> str:
        if getattr(a, "group", None):
            return f"group:{(await self._group(a.group))['_id']}"
        return f"project:{(await self._project(a.project))['_id']}"

    # -- yank ----------------------------------------------------------------------------------------
    async def package_yank(self, a: argparse.Namespace) -> dict[str, Any]:
        return await self._yank(a, yank=True)

    async def package_unyank(self, a: argparse.Namespace) -> dict[str, Any]:
        return await self._yank(a, yank=False)

    async def _yank(self, a: argparse.Namespace, *, yank: bool) -> dict[str, Any]:
        project = await self._project(a.project)
        async with self._publisher() as publisher:
            service = YankService(GovernanceRepository(self.mongo),
                                  PageBuilder(self.mongo, PackageRepository(self.mongo)), publisher)
            result = await (service.yank(project, a.package_id, a.reason, actor=ADMIN_ACTOR) if yank
                            else service.unyank(project, a.package_id, actor=ADMIN_ACTOR))
        return {"project_id": project["_id"], "package_id": result.package.id, "name": result.package.shown_name,
                "version": result.package.shown_version, "yanked": bool(result.yanked),
                "yanked_reason": result.yanked if isinstance(result.yanked, str) else None, "files": result.files}

    # -- protection rules ----------------------------------------------------------------------------
    async def protection_list(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        rules = await GovernanceRepository(self.mongo).rules(project["_id"])
        return {"project_id": project["_id"], "rules": [r.to_json() for r in rules]}

    async def protection_create(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        async with self._governance() as governance:
            rule = await governance.create_rule(project, {"package_type": "pypi", **_rule_fields(a)}, WHO)
        return rule.to_json()

    async def protection_update(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        async with self._governance() as governance:
            rule = await governance.update_rule(project, a.id, _rule_fields(a), WHO)
        return rule.to_json()

    async def protection_delete(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        async with self._governance() as governance:
            await governance.delete_rule(project, a.id, WHO)
        return {"project_id": project["_id"], "id": a.id, "deleted": True}

    # -- audit records -------------------------------------------------------------------------------
    async def audit_list(self, a: argparse.Namespace) -> dict[str, Any]:
        scope = await self._scope(a) if (a.project or a.group) else None
        query = AuditQuery(None, None, a.event_name, 0, max(1, min(a.limit, 1000)))
        records, total = await GovernanceRepository(self.mongo).records(
            scope, created_after=None, created_before=None, event_name=query.event_name, skip=0, limit=query.limit)
        return {"scope": scope or "instance", "total": total, "records": [record_json(r) for r in records]}

    # -- hooks ---------------------------------------------------------------------------------------
    async def hook_list(self, a: argparse.Namespace) -> dict[str, Any]:
        scope = await self._scope(a)
        hooks = await GovernanceRepository(self.mongo).hooks([scope])
        return {"scope": scope, "hooks": [hook_json(h) for h in hooks]}

    async def hook_create(self, a: argparse.Namespace) -> dict[str, Any]:
        scope = await self._scope(a)
        # An operator may point a hook anywhere (WEBHOOK_ALLOW_LOCAL_NETWORK still applies at delivery).
        governance = Governance(GovernanceRepository(self.mongo), _NoPublisher(), allow_local_hooks=True)
        hook = await governance.create_hook(scope, {"url": a.url, "token": a.token, "events": a.events})
        return hook_json(hook)

    async def hook_delete(self, a: argparse.Namespace) -> dict[str, Any]:
        scope = await self._scope(a)
        governance = Governance(GovernanceRepository(self.mongo), _NoPublisher(), allow_local_hooks=True)
        await governance.delete_hook(scope, a.id)
        return {"scope": scope, "id": a.id, "deleted": True}

    # -- cleanup policy ------------------------------------------------------------------------------
    async def cleanup_show(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        policy = Policy.from_doc(await GovernanceRepository(self.mongo).cleanup_policy(project["_id"]))
        return {"project_id": project["_id"], **policy.to_json()}

    async def cleanup_set(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        repo = GovernanceRepository(self.mongo)
        fields = {name: (None if value == "none" else value) for name, value in (
            ("keep_n_latest_versions", a.keep_n_latest_versions),
            ("delete_prereleases_older_than_days", a.delete_prereleases_older_than_days),
            ("delete_not_downloaded_for_days", a.delete_not_downloaded_for_days),
            ("enabled", a.enabled)) if value is not None}
        policy = updated_policy(Policy.from_doc(await repo.cleanup_policy(project["_id"])), fields)
        await repo.put_cleanup_policy(project["_id"], policy.to_json())
        return {"project_id": project["_id"], **policy.to_json()}


def _rule_fields(a: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if a.pattern is not None:
        fields["package_name_pattern"] = a.pattern
    for option, name in (("push", "minimum_access_level_for_push"), ("delete", "minimum_access_level_for_delete")):
        value = getattr(a, option)
        if value is not None:
            fields[name] = None if value == "none" else value
    return fields


class _NoPublisher:
    """Hooks change no cache and make no audit record: nothing to announce."""

    async def publish(self, *_args: object, **_kwargs: object) -> None:
        return None

