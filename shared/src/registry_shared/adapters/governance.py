"""MongoDB side of governance (SPEC §10): yanks, protection rules, audit records, hooks, cleanup policies.

Collections (contracts.md): `protection_rules` {_id, project_id, package_name_pattern, pattern_lower,
package_type, minimum_access_level_for_push, minimum_access_level_for_delete}; `audit_events` {_id: the
event's AMQP message_id (so a redelivered event writes nothing twice), id, event_name, ..., scopes:
["project:<id>", "group:<id>", ...] (whose API lists it)}; `hooks` {_id, scope: "project:<id>"|"group:<id>",
url, token, events, created_at}; `cleanup_policies` {_id: project_id, ...}; `leases` {_id, holder, until}.
Writes name one `_id` with plain equalities (nx-27017, contracts.md).
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from ..errors import Unprocessable
from ..governance.protection import ProtectionRule
from ..records.packages import PackageRecord
from ..records.times import stored_time
from .mongo import Mongo

PATTERN_TAKEN = "Package name pattern has already been taken"
INSTALLABLE = "installable"


class GovernanceRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    # -- yank (registry_shared.governance.yank.YankStore) --------------------------------------------
    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None:
        doc = await self.mongo.packages.find_one({"_id": package_id, "project_id": project_id})
        return PackageRecord.from_doc(doc) if doc is not None else None

    async def set_yanked(self, package: PackageRecord, yanked: bool | str) -> int:
        query = {"project_id": package.project_id, "package_id": package.id, "state": INSTALLABLE}
        ids = [doc["_id"] async for doc in self.mongo.distributions.find(query, {"_id": 1})]
        for file_id in ids:
            await self.mongo.distributions.update_one({"_id": file_id}, {"$set": {"yanked": yanked}})
        await self.mongo.packages.update_one({"_id": package.id}, {"$set": {"yanked": yanked}})
        return len(ids)

    async def yanked(self, package_ids: Sequence[int]) -> dict[int, bool | str]:
        """The yank of each of these packages that is yanked (E10/E11's `yanked`, `yanked_reason`)."""
        if not package_ids:
            return {}
        cursor = self.mongo.packages.find({"_id": {"$in": list(package_ids)}}, {"yanked": 1})
        return {int(doc["_id"]): doc["yanked"] async for doc in cursor if doc.get("yanked")}

    async def last_downloads(self, package_ids: list[int]) -> dict[int, datetime]:
        """When each of these packages was last downloaded (those ever downloaded)."""
        if not package_ids:
            return {}
        cursor = self.mongo.packages.find({"_id": {"$in": package_ids}}, {"last_downloaded_at": 1})
        found = {}
        async for doc in cursor:
            when = stored_time(doc.get("last_downloaded_at"))
            if when is not None:
                found[int(doc["_id"])] = when
        return found

    async def add_downloads(self, counts: list[tuple[str, int, int, datetime]]) -> None:
        """(collection, _id, downloads to add, last download) for files and packages, one `$inc` each, all
        at once."""
        await asyncio.gather(*(
            self.mongo.db[collection].update_one({"_id": doc_id}, {"$inc": {"downloads": count},
                                                                   "$set": {"last_downloaded_at": last}})
            for collection, doc_id, count, last in counts))

    # -- protection rules ------------------------------------------------------------------------------
    async def rules(self, project_id: int) -> list[ProtectionRule]:
        cursor = self.mongo.protection_rules.find({"project_id": project_id}).sort("_id", ASCENDING)
        return [ProtectionRule.from_doc(doc) async for doc in cursor]

    async def rule(self, project_id: int, rule_id: int) -> ProtectionRule | None:
        doc = await self.mongo.protection_rules.find_one({"_id": rule_id, "project_id": project_id})
        return ProtectionRule.from_doc(doc) if doc is not None else None

    async def create_rule(self, rule: ProtectionRule) -> ProtectionRule:
        if await self._pattern_taken(rule.project_id, rule.package_name_pattern, None):
            raise Unprocessable(PATTERN_TAKEN)
        created = ProtectionRule(**{**rule.__dict__, "id": await self.mongo.next_id("protection_rules")})
        try:
            await self.mongo.protection_rules.insert_one(_rule_doc(created))
        except DuplicateKeyError as exc:
            raise Unprocessable(PATTERN_TAKEN) from exc
        return created

    async def update_rule(self, rule: ProtectionRule) -> ProtectionRule:
        if await self._pattern_taken(rule.project_id, rule.package_name_pattern, rule.id):
            raise Unprocessable(PATTERN_TAKEN)
        doc = _rule_doc(rule)
        del doc["_id"]
        try:
            await self.mongo.protection_rules.update_one({"_id": rule.id, "project_id": rule.project_id},
                                                         {"$set": doc})
        except DuplicateKeyError as exc:
            raise Unprocessable(PATTERN_TAKEN) from exc
        return rule

    async def delete_rule(self, rule: ProtectionRule) -> None:
        await self.mongo.protection_rules.delete_one({"_id": rule.id, "project_id": rule.project_id})

    async def _pattern_taken(self, project_id: int, pattern: str, other_than: int | None) -> bool:
        doc = await self.mongo.protection_rules.find_one({"project_id": project_id, "pattern_lower": pattern.lower()},
                                                         {"_id": 1})
        return doc is not None and doc["_id"] != other_than

    # -- audit records ---------------------------------------------------------------------------------
    async def insert_record(self, message_id: str, record: dict[str, Any], scopes: list[str]) -> dict[str, Any]:
        """Write the record once per message id; a redelivery gets the record written the first time.

        Inserted first and read only when the insert finds the id taken: a first delivery (nearly every
        one) costs no read; a redelivery costs one id of the sequence, never used."""
        record = {**record, "id": await self.mongo.next_id("audit_events")}
        try:
            await self.mongo.audit_events.insert_one({"_id": message_id, **record, "scopes": scopes})
        except DuplicateKeyError:
            existing = await self.mongo.audit_events.find_one({"_id": message_id})
            if existing is not None:
                return _public(existing)
            raise
        return record

    async def records(self, scope: str | None, *, created_after: datetime | None, created_before: datetime | None,
                      event_name: str | None, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        if scope is not None:
            query["scopes"] = {"$in": [scope]}
        if event_name:
            query["event_name"] = event_name
        window: dict[str, Any] = {}
        if created_after is not None:
            window["$gte"] = created_after
        if created_before is not None:
            window["$lte"] = created_before
        if window:
            query["created_at"] = window
        total = await self.mongo.audit_events.count_documents(query)
        # Newest first by time: ids come from per-process blocks, so two workers' ids interleave.
        cursor = self.mongo.audit_events.find(query).sort([("created_at", DESCENDING), ("id", DESCENDING)])
        cursor = cursor.skip(skip).limit(limit)
        return [_public(doc) async for doc in cursor], total

    async def user_names(self, user_ids: Sequence[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        cursor = self.mongo.users.find({"_id": {"$in": list(user_ids)}}, {"username": 1})
        return {int(doc["_id"]): str(doc.get("username", "")) async for doc in cursor}

    async def project(self, project_id: int) -> dict[str, Any] | None:
        return await self.mongo.projects.find_one({"_id": project_id}, {"path": 1, "ancestor_ids": 1})

    async def group(self, group_id: int) -> dict[str, Any] | None:
        return await self.mongo.groups.find_one({"_id": group_id}, {"path": 1, "ancestor_ids": 1})

    # -- hooks -----------------------------------------------------------------------------------------
    async def hooks(self, scopes: Sequence[str]) -> list[dict[str, Any]]:
        if not scopes:
            return []
        cursor = self.mongo.hooks.find({"scope": {"$in": list(scopes)}}).sort("_id", ASCENDING)
        return [doc async for doc in cursor]

    async def hook(self, hook_id: int) -> dict[str, Any] | None:
        return await self.mongo.hooks.find_one({"_id": hook_id})

    async def create_hook(self, scope: str, url: str, token: str, events: list[str]) -> dict[str, Any]:
        doc = {"_id": await self.mongo.next_id("hooks"), "scope": scope, "url": url, "token": token,
               "events": events, "created_at": datetime.now(UTC)}
        await self.mongo.hooks.insert_one(doc)
        return doc

    async def delete_hook(self, scope: str, hook_id: int) -> bool:
        result = await self.mongo.hooks.delete_one({"_id": hook_id, "scope": scope})
        return result.deleted_count > 0

    # -- cleanup policies and the scheduler's lease ----------------------------------------------------
    async def cleanup_policy(self, project_id: int) -> dict[str, Any] | None:
        return await self.mongo.cleanup_policies.find_one({"_id": project_id})

    async def put_cleanup_policy(self, project_id: int, policy: dict[str, Any]) -> None:
        await self.mongo.cleanup_policies.update_one({"_id": project_id}, {"$set": policy}, upsert=True)

    async def enabled_cleanup_policies(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.mongo.cleanup_policies.find({"enabled": True})]

    async def take_lease(self, name: str, holder: str, every: timedelta) -> bool:
        """True for exactly one holder per period: the lease document names who runs this period."""
        now = datetime.now(UTC)
        doc = await self.mongo.leases.find_one({"_id": name})
        if doc is None:
            try:
                await self.mongo.leases.insert_one({"_id": name, "holder": holder, "until": now + every})
                return True
            except DuplicateKeyError:
                return False
        until = doc.get("until")
        ends = stored_time(until)
        if ends is not None and ends > now:
            return False
        result = await self.mongo.leases.update_one({"_id": name, "holder": doc.get("holder"), "until": until},
                                                    {"$set": {"holder": holder, "until": now + every}})
        return result.modified_count == 1


def _rule_doc(rule: ProtectionRule) -> dict[str, Any]:
    return {"_id": rule.id, "project_id": rule.project_id, "package_name_pattern": rule.package_name_pattern,
            "pattern_lower": rule.package_name_pattern.lower(), "package_type": rule.package_type,
            "minimum_access_level_for_push": rule.minimum_access_level_for_push,
            "minimum_access_level_for_delete": rule.minimum_access_level_for_delete}


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("_id", "scopes")}
