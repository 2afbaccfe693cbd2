"""Users, groups, projects, memberships, credentials and settings in MongoDB."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from ..domain.access import RegistryAccess, Role, Visibility
from ..domain.ids import is_numeric, parse_id
from ..domain.tokens import generate_token, hash_token
from .mongo import Document, Mongo

INSTANCE_DEFAULTS = {"forwarding": True, "allow_guest_to_read_packages": False}


class Conflict(Exception):
    """A unique name is already taken, or a referenced parent is missing."""


def _now() -> datetime:
    return datetime.now(UTC)


class TenancyRepository:
    """Reads and writes of the tenancy model. Ids come from one sequence, as GitLab's examples show."""

    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    # -- lookups -------------------------------------------------------------------------------
    async def find_user(self, ref: str | int) -> dict[str, Any] | None:
        text = str(ref)
        if is_numeric(text):
            user_id = parse_id(text)
            return None if user_id is None else await self.mongo.users.find_one({"_id": user_id})
        return await self.mongo.users.find_one({"username": text})

    async def find_group(self, ref: str | int) -> dict[str, Any] | None:
        return await self._find_by_ref(self.mongo.groups, ref)

    async def find_project(self, ref: str | int) -> dict[str, Any] | None:
        return await self._find_by_ref(self.mongo.projects, ref)

    @staticmethod
    async def _find_by_ref(collection: AsyncCollection[Document], ref: str | int) -> dict[str, Any] | None:
        """`:id` is a number or a URL-encoded full path (`acme%2Fapi`)."""
        text = unquote(str(ref)).strip("/")
        if is_numeric(text):
            found_id = parse_id(text)
            return None if found_id is None else await collection.find_one({"_id": found_id})
        if not text:
            return None
        return await collection.find_one({"path_lower": text.lower()})

    # -- creation ------------------------------------------------------------------------------
    async def create_user(self, username: str, admin: bool = False) -> dict[str, Any]:
        doc = {"_id": await self.mongo.next_id("ids"), "username": username, "admin": admin, "created_at": _now()}
        try:
            await self.mongo.users.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict(f"username {username!r} is already taken") from exc
        return doc

    async def create_group(self, path: str, name: str | None, visibility: Visibility) -> dict[str, Any]:
        path = path.strip("/")
        parent_path, _, leaf = path.rpartition("/")
        ancestor_ids: list[int] = []
        parent_id = None
        if parent_path:
            parent = await self.find_group(parent_path)
            if parent is None:
                raise Conflict(f"parent group {parent_path!r} does not exist")
            parent_id = parent["_id"]
            ancestor_ids = [*parent["ancestor_ids"], parent["_id"]]
        await self._check_path_free(path)
        doc = {
            "_id": await self.mongo.next_id("ids"),
            "path": path,
            "path_lower": path.lower(),
            "name": name or leaf,
            "visibility": visibility.value,
            "parent_id": parent_id,
            "ancestor_ids": ancestor_ids,
            "forwarding": None,
            "forwarding_locked": False,
            "created_at": _now(),
        }
        try:
            await self.mongo.groups.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict(f"path {path!r} is already taken") from exc
        return doc

    async def create_project(
        self, path: str, name: str | None, visibility: Visibility, registry_access: RegistryAccess
    ) -> dict[str, Any]:
        path = path.strip("/")
        parent_path, _, leaf = path.rpartition("/")
        if not parent_path:
            raise Conflict("a project path needs a namespace: group/project or username/project")
        group = await self.find_group(parent_path)
        owner_id = None
        if group is not None:
            ancestor_ids = [*group["ancestor_ids"], group["_id"]]
            namespace_id = group["_id"]
        else:
            user = await self.mongo.users.find_one({"username": parent_path})
            if user is None:
                raise Conflict(f"namespace {parent_path!r} is neither a group nor a user")
            ancestor_ids, namespace_id, owner_id = [], None, user["_id"]
        await self._check_path_free(path)
        doc = {
            "_id": await self.mongo.next_id("ids"),
            "path": path,
            "path_lower": path.lower(),
            "name": name or leaf,
            "visibility": visibility.value,
            "registry_access": registry_access.value,
            "namespace_id": namespace_id,
            "owner_id": owner_id,
            "ancestor_ids": ancestor_ids,
            "forwarding": None,
            "created_at": _now(),
        }
        try:
            await self.mongo.projects.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict(f"path {path!r} is already taken") from exc
        if owner_id is not None:
            await self.add_member(owner_id, "project", doc["_id"], Role.OWNER)
        return doc

    async def _check_path_free(self, path: str) -> None:
        lower = path.lower()
        if await self.mongo.groups.find_one({"path_lower": lower}) or await self.mongo.projects.find_one(
            {"path_lower": lower}
        ):
            raise Conflict(f"path {path!r} is already taken")

    async def update(self, kind: str, ref_id: int, fields: dict[str, Any]) -> None:
        collection = self.mongo.groups if kind == "group" else self.mongo.projects
        await collection.update_one({"_id": ref_id}, {"$set": fields})

    # -- membership ----------------------------------------------------------------------------
    async def add_member(self, user_id: int, source_kind: str, source_id: int, role: Role) -> dict[str, Any]:
        key = f"{source_kind}:{source_id}:{user_id}"
        doc = {"user_id": user_id, "source_kind": source_kind, "source_id": source_id, "access_level": int(role)}
        await self.mongo.members.update_one({"_id": key}, {"$set": doc}, upsert=True)
        return {"_id": key, **doc}

    async def remove_member(self, user_id: int, source_kind: str, source_id: int) -> bool:
        result = await self.mongo.members.delete_one({"_id": f"{source_kind}:{source_id}:{user_id}"})
        return result.deleted_count == 1

    async def effective_role(self, user_id: int, project: dict[str, Any]) -> Role:
        """The highest role from the project's own membership and every ancestor group's."""
        keys = [f"project:{project['_id']}:{user_id}"] + [f"group:{g}:{user_id}" for g in project["ancestor_ids"]]
        return await self._max_role(keys)

    async def effective_group_role(self, user_id: int, group: dict[str, Any]) -> Role:
        keys = [f"group:{g}:{user_id}" for g in [*group["ancestor_ids"], group["_id"]]]
        return await self._max_role(keys)

    async def _max_role(self, keys: list[str]) -> Role:
        best = 0
        async for doc in self.mongo.members.find({"_id": {"$in": keys}}):
            best = max(best, int(doc["access_level"]))
        return Role(best) if best in Role._value2member_map_ else Role.NONE

    # -- credentials ---------------------------------------------------------------------------
    async def create_personal_token(
        self, user_id: int, scopes: list[str], expires_at: datetime | None, name: str = "token"
    ) -> tuple[dict[str, Any], str]:
        token = generate_token("personal")
        doc = {
            "_id": await self.mongo.next_id("ids"),
            "user_id": user_id,
            "name": name,
            "token_hash": hash_token(token),
            "scopes": scopes,
            "expires_at": expires_at,
            "revoked_at": None,
            "created_at": _now(),
        }
        await self.mongo.personal_tokens.insert_one(doc)
        return doc, token

    async def create_deploy_token(
        self, username: str, scopes: list[str], expires_at: datetime | None,
        project_id: int | None = None, group_id: int | None = None,
    ) -> tuple[dict[str, Any], str]:
        token = generate_token("deploy")
        doc = {
            "_id": await self.mongo.next_id("ids"),
            "username": username,
            "token_hash": hash_token(token),
            "scopes": scopes,
            "project_id": project_id,
            "group_id": group_id,
            "expires_at": expires_at,
            "revoked_at": None,
            "created_at": _now(),
        }
        await self.mongo.deploy_tokens.insert_one(doc)
        return doc, token

    async def create_job(self, project_id: int, user_id: int) -> tuple[dict[str, Any], str]:
        token = generate_token("job")
        doc = {
            "_id": await self.mongo.next_id("ids"),
            "project_id": project_id,
            "user_id": user_id,
            "token_hash": hash_token(token),
            "status": "running",
            "created_at": _now(),
        }
        await self.mongo.jobs.insert_one(doc)
        return doc, token

    async def revoke(self, collection: str, token_id: int) -> bool:
        result = await self.mongo.db[collection].update_one(
            {"_id": token_id, "revoked_at": None}, {"$set": {"revoked_at": _now()}}
        )
        return result.modified_count == 1

    async def finish_job(self, job_id: int) -> bool:
        result = await self.mongo.jobs.update_one(
            {"_id": job_id, "status": "running"}, {"$set": {"status": "finished", "finished_at": _now()}}
        )
        return result.modified_count == 1

    async def allow_job_tokens(self, project_id: int, source_project_id: int) -> None:
        key = f"{project_id}:{source_project_id}"
        await self.mongo.job_token_allowlist.update_one(
            {"_id": key}, {"$set": {"project_id": project_id, "source_project_id": source_project_id}}, upsert=True
        )

    async def job_allowed(self, job_project_id: int, project_id: int) -> bool:
        if job_project_id == project_id:
            return True
        return await self.mongo.job_token_allowlist.find_one({"_id": f"{project_id}:{job_project_id}"}) is not None

    # -- settings ------------------------------------------------------------------------------
    async def instance_settings(self) -> dict[str, Any]:
        doc = await self.mongo.instance_settings.find_one({"_id": "instance"}) or {}
        return {**INSTANCE_DEFAULTS, **{k: v for k, v in doc.items() if k != "_id"}}

    async def set_instance_settings(self, fields: dict[str, Any]) -> dict[str, Any]:
        await self.mongo.instance_settings.update_one({"_id": "instance"}, {"$set": fields}, upsert=True)
        return await self.instance_settings()
