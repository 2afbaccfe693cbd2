"""The operations behind registry-admin. Changes that caches depend on are announced as events."""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ..adapters.amqp import Broker
from ..adapters.mongo import Mongo
from ..adapters.policies import PolicyRepository, scope_key
from ..adapters.tenancy import Conflict, TenancyRepository
from ..domain.access import DEPLOY_SCOPES, PAT_SCOPES, RegistryAccess, Role, Visibility
from ..errors import ParameterError
from ..events import AccessChanged, Event, PolicyChanged, TokenCreated, TokenRevoked
from ..policy.document import PolicyDocument, parse_policy
from ..policy.osv import AdvisoryError, advisory_files, apply_advisories, read_advisory
from ..replicas import Announcer, ReplicaRegistry
from ..settings import CommonSettings
from .governance import GovernanceCommands


class AdminError(Exception):
    """A user mistake: printed on stderr, exit status 1."""


def _scopes(raw: str, allowed: frozenset[str]) -> list[str]:
    scopes = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in allowed]
    if not scopes or unknown:
        raise AdminError(f"invalid scopes {','.join(unknown) or raw!r}; allowed: {', '.join(sorted(allowed))}")
    return scopes


class Commands(GovernanceCommands):
    def __init__(self, settings: CommonSettings, mongo: Mongo) -> None:
        self.settings = settings
        self.mongo = mongo
        self.repo = TenancyRepository(mongo)

    @classmethod
    async def open(cls, settings: CommonSettings) -> Commands:
        mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
        await mongo.ensure_indexes()
        return cls(settings, mongo)

    async def close(self) -> None:
        await self.mongo.close()

    async def _announce(self, event: Event) -> None:
        """Tell running replicas to drop cached credentials or decisions, and wait (bounded by
        INDEX_APPLIED_TIMEOUT) until every live index-api and upload-api replica has: a revoked token is
        refused everywhere once the command returns. The database change already holds; if the broker is
        unreachable, caches expire on their own within their TTL."""
        broker = Broker(self.settings.amqp_url, self.settings.amqp_exchange)
        try:
            await asyncio.wait_for(broker.connect(), 5)
            announcer = Announcer(broker, ReplicaRegistry(self.mongo), self.settings.index_applied_timeout)
            await announcer.start()
            await announcer.publish(event, correlation_id=None)
        except Exception:  # noqa: BLE001 - best effort, see docstring
            pass
        finally:
            try:
                await broker.close()
            except Exception:  # noqa: BLE001
                pass

    async def _user(self, ref: str) -> dict[str, Any]:
        user = await self.repo.find_user(ref)
        if user is None:
            raise AdminError(f"user {ref!r} not found")
        return user

    async def _group(self, ref: str) -> dict[str, Any]:
        group = await self.repo.find_group(ref)
        if group is None:
            raise AdminError(f"group {ref!r} not found")
        return group

    async def _project(self, ref: str) -> dict[str, Any]:
        project = await self.repo.find_project(ref)
        if project is None:
            raise AdminError(f"project {ref!r} not found")
        return project

    # -- tenancy -------------------------------------------------------------------------------
    async def user_create(self, a: argparse.Namespace) -> dict[str, Any]:
        try:
            user = await self.repo.create_user(a.username, a.admin)
        except Conflict as exc:
            raise AdminError(str(exc)) from exc
        return {"id": user["_id"], "username": user["username"], "admin": user["admin"]}

    async def group_create(self, a: argparse.Namespace) -> dict[str, Any]:
        try:
            g = await self.repo.create_group(a.path, a.name, Visibility(a.visibility))
        except Conflict as exc:
            raise AdminError(str(exc)) from exc
        return {"id": g["_id"], "path": g["path"], "name": g["name"], "visibility": g["visibility"],
                "parent_id": g["parent_id"]}

    async def project_create(self, a: argparse.Namespace) -> dict[str, Any]:
        try:
            p = await self.repo.create_project(a.path, a.name, Visibility(a.visibility),
                                               RegistryAccess(a.registry_access))
        except Conflict as exc:
            raise AdminError(str(exc)) from exc
        return {"id": p["_id"], "path": p["path"], "name": p["name"], "visibility": p["visibility"],
                "registry_access": p["registry_access"], "namespace_id": p["namespace_id"]}

    async def _member_target(self, a: argparse.Namespace) -> tuple[str, dict[str, Any]]:
        if a.group:
            return "group", await self._group(a.group)
        return "project", await self._project(a.project)

    async def member_add(self, a: argparse.Namespace) -> dict[str, Any]:
        user = await self._user(a.user)
        kind, target = await self._member_target(a)
        role = Role[a.role.upper()]
        await self.repo.add_member(user["_id"], kind, target["_id"], role)
        await self._announce(self._access_event(kind, target))
        return {"user_id": user["_id"], kind: target["path"], f"{kind}_id": target["_id"], "role": a.role,
                "access_level": int(role)}

    async def member_remove(self, a: argparse.Namespace) -> dict[str, Any]:
        user = await self._user(a.user)
        kind, target = await self._member_target(a)
        removed = await self.repo.remove_member(user["_id"], kind, target["_id"])
        if not removed:
            raise AdminError(f"user {a.user!r} is not a direct member of {kind} {target['path']!r}")
        await self._announce(self._access_event(kind, target))
        return {"user_id": user["_id"], kind: target["path"], "removed": True}

    @staticmethod
    def _access_event(kind: str, target: dict[str, Any]) -> AccessChanged:
        if kind == "group":
            return AccessChanged(group_ids=[target["_id"]])
        return AccessChanged(project_ids=[target["_id"]])

    # -- credentials ---------------------------------------------------------------------------
    async def token_create(self, a: argparse.Namespace) -> dict[str, Any]:
        user = await self._user(a.user)
        doc, token = await self.repo.create_personal_token(user["_id"], _scopes(a.scopes, PAT_SCOPES),
                                                           a.expires_at, a.name)
        await self._announce(TokenCreated(token_kind="personal", token_id=doc["_id"], name=a.name or "",
                                          scopes=list(doc["scopes"]), user_id=user["_id"]))
        return {"id": doc["_id"], "token": token, "user_id": user["_id"], "scopes": doc["scopes"],
                "expires_at": doc["expires_at"].date().isoformat() if doc["expires_at"] else None}

    async def token_revoke(self, a: argparse.Namespace) -> dict[str, Any]:
        return await self._revoke("personal_tokens", "personal", a.id)

    async def deploy_token_create(self, a: argparse.Namespace) -> dict[str, Any]:
        scopes = _scopes(a.scopes, DEPLOY_SCOPES)
        if a.project:
            project = await self._project(a.project)
            doc, token = await self.repo.create_deploy_token(a.username, scopes, a.expires_at,
                                                             project_id=project["_id"])
        else:
            group = await self._group(a.group)
            doc, token = await self.repo.create_deploy_token(a.username, scopes, a.expires_at, group_id=group["_id"])
        await self._announce(TokenCreated(token_kind="deploy", token_id=doc["_id"], name=doc["username"],
                                          scopes=scopes, project_id=doc["project_id"], group_id=doc["group_id"]))
        return {"id": doc["_id"], "username": doc["username"], "token": token, "scopes": scopes,
                "project_id": doc["project_id"], "group_id": doc["group_id"]}

    async def deploy_token_revoke(self, a: argparse.Namespace) -> dict[str, Any]:
        return await self._revoke("deploy_tokens", "deploy", a.id)

    async def _revoke(self, collection: str, kind: str, token_id: int) -> dict[str, Any]:
        revoked = await self.repo.revoke(collection, token_id)
        doc = await self.mongo.db[collection].find_one({"_id": token_id})
        if doc is None:
            raise AdminError(f"token {token_id} not found")
        # The owner only when this call revoked it: the audit consumer records those (token_revoked), and a
        # repeated revocation only drops caches again.
        owner = {"user_id": doc.get("user_id"), "project_id": doc.get("project_id"),
                 "group_id": doc.get("group_id")} if revoked else {}
        await self._announce(TokenRevoked(token_kind=kind, token_id=token_id, **owner))  # type: ignore[arg-type]  # kind: one of the three
        return {"id": token_id, "revoked": True}

    async def job_start(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        user = await self._user(a.user)
        doc, token = await self.repo.create_job(project["_id"], user["_id"])
        return {"id": doc["_id"], "token": token, "project_id": project["_id"], "user_id": user["_id"]}

    async def job_finish(self, a: argparse.Namespace) -> dict[str, Any]:
        if not await self.repo.finish_job(a.id):
            job = await self.mongo.jobs.find_one({"_id": a.id})
            if job is None:
                raise AdminError(f"job {a.id} not found")
        await self._announce(TokenRevoked(token_kind="job", token_id=a.id))
        return {"id": a.id, "status": "finished"}

    async def job_token_scope_add(self, a: argparse.Namespace) -> dict[str, Any]:
        project = await self._project(a.project)
        allowed = await self._project(a.allow)
        await self.repo.allow_job_tokens(project["_id"], allowed["_id"])
        await self._announce(AccessChanged(project_ids=[project["_id"]]))
        return {"project_id": project["_id"], "project": project["path"], "allowed_project_id": allowed["_id"],
                "allowed_project": allowed["path"]}

    # -- settings ------------------------------------------------------------------------------
    async def settings_set(self, a: argparse.Namespace) -> dict[str, Any]:
        if a.group or a.project:
            if a.allow_guest_to_read_packages is not None:
                raise AdminError("--allow-guest-to-read-packages is an instance setting; omit --group/--project")
            if a.forwarding is None:
                raise AdminError("nothing to set: give --forwarding on|off")
            kind, target = (("group", await self._group(a.group)) if a.group
                            else ("project", await self._project(a.project)))
            fields: dict[str, Any] = {"forwarding": a.forwarding}
            if kind == "group":
                fields["forwarding_locked"] = bool(a.lock)
            elif a.lock:
                raise AdminError("--lock applies to groups (it locks the setting for their descendants)")
            await self.repo.update(kind, target["_id"], fields)
            await self._announce(self._access_event(kind, target))
            return {kind: target["path"], f"{kind}_id": target["_id"], **fields}
        if a.lock:
            raise AdminError("--lock applies to groups")
        fields = {}
        if a.forwarding is not None:
            fields["forwarding"] = a.forwarding
        if a.allow_guest_to_read_packages is not None:
            fields["allow_guest_to_read_packages"] = a.allow_guest_to_read_packages
        if not fields:
            raise AdminError("nothing to set: give --forwarding and/or --allow-guest-to-read-packages")
        result = await self.repo.set_instance_settings(fields)
        await self._announce(AccessChanged())
        return {"instance": result}

    async def settings_show(self, _a: argparse.Namespace) -> dict[str, Any]:
        return {"instance": await self.repo.instance_settings()}

    # -- supply-chain policy (SPEC §9) ------------------------------------------------------------
    async def _policy_target(self, a: argparse.Namespace) -> tuple[str, int | None]:
        if getattr(a, "group", None):
            return "group", (await self._group(a.group))["_id"]
        if getattr(a, "project", None):
            return "project", (await self._project(a.project))["_id"]
        return "instance", None

    async def _save_policy(self, scope_type: str, scope_id: int | None, policy: PolicyDocument) -> dict[str, Any]:
        """Store, then announce and wait until every live index-api and upload-api replica dropped its copy."""
        await PolicyRepository(self.mongo).put(scope_key(scope_type, scope_id), policy)
        await self._announce(PolicyChanged(scope_type=scope_type, scope_id=scope_id,  # type: ignore[arg-type]
                                           actor={"principal": "admin_cli"}, ip_address="",
                                           policy=policy.to_json()))
        return {"scope_type": scope_type, "scope_id": scope_id, "policy": policy.to_json()}

    async def policy_set(self, a: argparse.Namespace) -> dict[str, Any]:
        try:
            policy = parse_policy(json.loads(a.document))
        except ValueError as exc:
            raise AdminError(f"--json is not valid JSON: {exc}") from exc
        except ParameterError as exc:
            raise AdminError(exc.message) from exc
        return await self._save_policy(*await self._policy_target(a), policy)

    async def policy_show(self, a: argparse.Namespace) -> dict[str, Any]:
        scope_type, scope_id = await self._policy_target(a)
        policy = await PolicyRepository(self.mongo).get(scope_key(scope_type, scope_id))
        return {"scope_type": scope_type, "scope_id": scope_id, "policy": policy.to_json()}

    async def policy_import_osv(self, a: argparse.Namespace) -> dict[str, Any]:
        scope_type, scope_id = await self._policy_target(a)
        paths = [Path(p) for p in a.paths]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise AdminError(f"no such file or folder: {', '.join(missing)}")
        try:
            advisories = [read_advisory(p) for p in advisory_files(paths)]
        except AdvisoryError as exc:
            raise AdminError(str(exc)) from exc
        current = await PolicyRepository(self.mongo).get(scope_key(scope_type, scope_id))
        result = await self._save_policy(scope_type, scope_id, apply_advisories(current, advisories))
        result["advisories"] = len(advisories)
        result["withdrawn"] = sorted(a.id for a in advisories if a.withdrawn)
        result["rules_added"] = sum(len(a.rules) for a in advisories)
        return result
