"""Policy documents (`policies`) and package statuses (`package_statuses`) in MongoDB.

`policies` `{_id: "instance" | "group:<id>" | "project:<id>", <the document's fields>, updated_at}`;
`package_statuses` `{_id: "<project_id>:<name>", project_id, name (normalised), status, reason, updated_at}`.
Both are small (one document per level or per name with a status), so replicas load them whole and cache
them until a `policy.changed` / `package.status_changed` event drops the copy.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..policy.document import PolicyDocument, parse_policy
from ..policy.evaluate import NO_POLICY, CompiledPolicy, EffectivePolicy, compile_policy
from ..policy.status import PackageStatus, Status
from .mongo import Mongo

INSTANCE = "instance"


def scope_key(scope_type: str, scope_id: int | None) -> str:
    return INSTANCE if scope_type == INSTANCE else f"{scope_type}:{scope_id}"


class PolicyRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.policies = mongo.policies
        self.statuses = mongo.package_statuses

    async def get(self, key: str) -> PolicyDocument:
        doc = await self.policies.find_one({"_id": key})
        return _document(doc) if doc else PolicyDocument()

    async def all(self) -> dict[str, PolicyDocument]:
        return {str(doc["_id"]): _document(doc) async for doc in self.policies.find({})}

    async def put(self, key: str, policy: PolicyDocument) -> None:
        fields = {**policy.to_json(), "updated_at": datetime.now(UTC)}
        # `$set` of every field rather than replace_one: the operation tests/integration pins on nx-27017.
        await self.policies.update_one({"_id": key}, {"$set": fields}, upsert=True)

    async def status(self, project_id: int, name: str) -> PackageStatus | None:
        doc = await self.statuses.find_one({"_id": f"{project_id}:{name}"})
        return _status(doc) if doc else None

    async def all_statuses(self) -> dict[tuple[int, str], PackageStatus]:
        out = {}
        async for doc in self.statuses.find({}):
            status = _status(doc)
            out[(status.project_id, status.name)] = status
        return out

    async def set_status(self, status: PackageStatus) -> None:
        await self.statuses.update_one(
            {"_id": f"{status.project_id}:{status.name}"},
            {"$set": {"project_id": status.project_id, "name": status.name, "status": status.status.value,
                      "reason": status.reason, "updated_at": datetime.now(UTC)}}, upsert=True)


def _document(doc: dict[str, Any]) -> PolicyDocument:
    return parse_policy({k: v for k, v in doc.items() if k not in ("_id", "updated_at")})


def _status(doc: dict[str, Any]) -> PackageStatus:
    return PackageStatus(int(doc["project_id"]), str(doc["name"]), Status(doc["status"]), str(doc.get("reason") or ""))


def chain_of(kind: str, doc: dict[str, Any]) -> tuple[str, ...]:
    """The levels over a project or group document: the instance, every group above it (root first), itself."""
    ancestors = tuple(f"group:{g}" for g in doc.get("ancestor_ids") or ())
    return (INSTANCE, *ancestors, f"{kind}:{doc['_id']}")


class PolicyBook:
    """Every level's compiled policy and every package status, loaded whole on first use and kept until
    `drop()` (a `policy.changed` / `package.status_changed` event, or a broker reconnect).

    A load that a drop overtook is used for the request that made it but not kept, so a replica never keeps
    what it read before a change it has acknowledged.
    """

    def __init__(self, repo: PolicyRepository) -> None:
        self.repo = repo
        self.generation = 0
        self._levels: dict[str, CompiledPolicy] | None = None
        self._statuses: dict[tuple[int, str], PackageStatus] | None = None
        self._by_name: dict[str, dict[int, PackageStatus]] = {}
        self._effective: dict[tuple[str, ...], EffectivePolicy] = {}

    def drop(self) -> None:
        self.generation += 1
        self._levels = None
        self._statuses = None
        self._by_name = {}
        self._effective = {}

    async def levels(self) -> dict[str, CompiledPolicy]:
        levels = self._levels
        if levels is None:
            generation = self.generation
            levels = {key: compile_policy(doc) for key, doc in (await self.repo.all()).items() if not doc.empty}
            if generation == self.generation:
                self._levels = levels
        return levels

    async def statuses(self) -> dict[tuple[int, str], PackageStatus]:
        statuses = self._statuses
        if statuses is None:
            generation = self.generation
            statuses = await self.repo.all_statuses()
            if generation == self.generation:
                self._statuses = statuses
                self._by_name = {}
                for (project_id, name), status in statuses.items():
                    self._by_name.setdefault(name, {})[project_id] = status
        return statuses

    async def statuses_of(self, name: str) -> dict[int, PackageStatus]:
        """The statuses set on `name`, by project id."""
        statuses = await self.statuses()
        if not statuses:
            return {}
        if self._statuses is statuses:
            return self._by_name.get(name, {})
        return {p: s for (p, n), s in statuses.items() if n == name}  # a load a drop overtook: not indexed

    async def effective(self, chain: tuple[str, ...]) -> EffectivePolicy:
        found = self._effective.get(chain)
        if found is None:
            generation = self.generation
            levels = await self.levels()
            found = EffectivePolicy.of(levels.get(key) for key in chain) if levels else NO_POLICY
            if generation == self.generation:
                self._effective[chain] = found
        return found

    async def status(self, project_id: int, name: str) -> PackageStatus | None:
        statuses = await self.statuses()
        return statuses.get((project_id, name)) if statuses else None
