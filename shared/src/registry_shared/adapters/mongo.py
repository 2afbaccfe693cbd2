"""MongoDB: the client, the collections and their indexes, and numeric id sequences.

Only operations that both MongoDB and the embedded nx-27017 server support are used (see
tests/integration/test_mongo_operations.py, which pins each of them).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

# A stored document as the driver returns it (the typed records over them live with their owners).
Document = dict[str, Any]
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "users": [([("username", ASCENDING)], {"unique": True})],
    "groups": [([("path_lower", ASCENDING)], {"unique": True}), ([("parent_id", ASCENDING)], {})],
    "projects": [([("path_lower", ASCENDING)], {"unique": True}), ([("ancestor_ids", ASCENDING)], {})],
    "members": [([("user_id", ASCENDING)], {}), ([("source_kind", ASCENDING), ("source_id", ASCENDING)], {})],
    "personal_tokens": [([("token_hash", ASCENDING)], {"unique": True})],
    "deploy_tokens": [([("token_hash", ASCENDING)], {"unique": True})],
    "jobs": [([("token_hash", ASCENDING)], {"unique": True})],
    "distributions": [
        ([("project_id", ASCENDING), ("filename", ASCENDING)], {"unique": True}),
        ([("package_id", ASCENDING)], {}),
        # Page rebuilds read one name's files: without it nx-27017 decodes every document of the collection.
        ([("name", ASCENDING)], {}),
    ],
    "packages": [([("project_id", ASCENDING), ("name", ASCENDING), ("version", ASCENDING)], {"unique": True})],
    # Governance (SPEC §10, registry_shared.adapters.governance).
    "protection_rules": [([("project_id", ASCENDING), ("pattern_lower", ASCENDING)], {"unique": True})],
    # Listed newest first (`created_at`, then `id`), without an index on them: nx-27017 0.8.1 did not list one
    # created beside this (test_the_adapters_indexes_apply_twice), so the sort reads the scope's records.
    "audit_events": [([("scopes", ASCENDING)], {})],
    "hooks": [([("scope", ASCENDING)], {})],
}
# Sequences taken from MongoDB this many ids at a time (one round trip per block, not per id), for the ids
# minted on the upload path (an audit record per upload too). Ids stay unique, not gapless, and are not in
# time order across processes (nothing orders by them but ties: a page's earliest spelling of a release goes
# by `created_at`, and so do audit records, newest first).
ID_BLOCKS: dict[str, int] = {"files": 64, "packages": 64, "audit_events": 64}


@dataclass
class Mongo:
    """The registry's database handle. One per process."""

    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    # sequence -> (next id to hand out, last id of the block); refilled under the sequence's lock.
    _blocks: dict[str, tuple[int, int]] = field(default_factory=dict)
    _block_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def connect(cls, url: str, database: str) -> Mongo:
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000)
        return cls(client=client, db=client[database])

    def __getattr__(self, name: str) -> AsyncCollection[Document]:
        # Collections by attribute: mongo.users, mongo.distributions, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return self.db[name]

    async def ensure_indexes(self) -> None:
        for collection, indexes in INDEXES.items():
            for keys, options in indexes:
                await self.db[collection].create_index(keys, **options)

    async def next_id(self, sequence: str) -> int:
        """The next value of a numeric id sequence (users, groups and projects share `namespaces`); those
        of ID_BLOCKS come from a block reserved by this process."""
        block = ID_BLOCKS.get(sequence, 1)
        if block == 1:
            return await self._take_ids(sequence, 1)
        lock = self._block_locks.setdefault(sequence, asyncio.Lock())
        async with lock:
            nxt, last = self._blocks.get(sequence, (1, 0))
            if nxt > last:
                last = await self._take_ids(sequence, block)
                nxt = last - block + 1
            self._blocks[sequence] = (nxt + 1, last)
            return nxt

    async def _take_ids(self, sequence: str, count: int) -> int:
        """Advance the sequence by `count`; the last id taken."""
        doc = await self.db.counters.find_one_and_update(
            {"_id": sequence}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        if doc is None:  # cannot happen: an upsert returning the document after the update always has one
            raise RuntimeError(f"counter {sequence!r} was not upserted")
        return int(doc["seq"])

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
            return False

    async def close(self) -> None:
        await self.client.close()
