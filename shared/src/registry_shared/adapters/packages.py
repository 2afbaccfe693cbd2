"""Package files, packages, core metadata and the precomputed simple documents in MongoDB.

A `distributions` document is first a reservation of `(project_id, filename)` (state `uploading`),
then `processing` once its bytes are stored, then `installable` once the worker indexed it.
The unique index on `(project_id, filename)` is what makes concurrent uploads of one filename safe.
An `uploading` reservation holds a lease (`lease_until`) that its upload renews while it streams: one whose
lease ran out was abandoned (its process died, or the database failed while it was being undone) and the
next upload of that filename reclaims it, so nothing can block a retry for longer than one lease.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from ..domain.simple import FileEntry
from .mongo import Mongo

UPLOADING, PROCESSING, INSTALLABLE = "uploading", "processing", "installable"
LEGACY_LEASE = timedelta(hours=1)


def abandoned(doc: dict[str, Any], now: datetime | None = None) -> bool:
    """An `uploading` reservation whose lease ran out: its upload will never finish."""
    if doc.get("state") != UPLOADING:
        return False
    until = doc.get("lease_until")
    if not isinstance(until, datetime):  # reserved before leases existed: give it an hour from its creation
        created = doc.get("created_at")
        if not isinstance(created, datetime):
            return False
        until = created + LEGACY_LEASE
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return until < (now or datetime.now(UTC))


def page_key(scope_kind: str, scope_id: int, name: str | None = None) -> str:
    """The `_id` of a precomputed simple document: a scope's index, or one name's page."""
    return f"{scope_kind}:{scope_id}" if name is None else f"{scope_kind}:{scope_id}:{name}"


class PackageRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    # -- reservations and files ----------------------------------------------------------------
    async def reserve(self, doc: dict[str, Any], lease: float = 30.0) -> tuple[bool, dict[str, Any]]:
        """Insert a reservation leased for `lease` seconds. Returns (True, doc) if ours, else (False, the
        existing document)."""
        now = datetime.now(UTC)
        doc = {**doc, "_id": await self.mongo.next_id("files"), "state": UPLOADING, "created_at": now,
               "lease_until": now + timedelta(seconds=lease)}
        try:
            await self.mongo.distributions.insert_one(doc)
            return True, doc
        except DuplicateKeyError:
            existing = await self.find_file(doc["project_id"], doc["filename"])
            if existing is None:  # released between our insert and our read: try once more
                fresh = {k: v for k, v in doc.items() if k not in ("_id", "state", "created_at", "lease_until")}
                return await self.reserve(fresh, lease)
            return False, existing

    async def renew_lease(self, file_id: int, upload_id: str, lease: float) -> bool:
        """Extend our `uploading` reservation's lease; False if it is no longer ours (it was reclaimed)."""
        result = await self.mongo.distributions.update_one(
            {"_id": file_id, "upload_id": upload_id, "state": UPLOADING},
            {"$set": {"lease_until": datetime.now(UTC) + timedelta(seconds=lease)}})
        return result.matched_count == 1

    async def reclaim(self, doc: dict[str, Any]) -> bool:
        """Drop an abandoned reservation (see `abandoned`), unless it changed since it was read."""
        result = await self.mongo.distributions.delete_one(
            {"_id": doc["_id"], "upload_id": doc.get("upload_id"), "state": UPLOADING})
        return result.deleted_count == 1

    async def find_file(self, project_id: int, filename: str) -> dict[str, Any] | None:
        return await self.mongo.distributions.find_one({"project_id": project_id, "filename": filename})

    async def get_file(self, file_id: int) -> dict[str, Any] | None:
        return await self.mongo.distributions.find_one({"_id": file_id})

    async def mark_stored(self, file_id: int, upload_id: str, fields: dict[str, Any]) -> bool:
        result = await self.mongo.distributions.update_one(
            {"_id": file_id, "upload_id": upload_id, "state": UPLOADING}, {"$set": {**fields, "state": PROCESSING}}
        )
        return result.modified_count == 1

    async def release(self, file_id: int, upload_id: str | None = None) -> bool:
        """Drop a reservation that never became installable (a failed or rejected upload)."""
        query: dict[str, Any] = {"_id": file_id, "state": {"$ne": INSTALLABLE}}
        if upload_id:
            query["upload_id"] = upload_id
        result = await self.mongo.distributions.delete_one(query)
        return result.deleted_count == 1

    async def mark_installable(self, file_id: int, fields: dict[str, Any]) -> bool:
        # `$ne` rather than `$in: [processing, installable]`: nx-27017 applies an update whose filter
        # combines an integer `_id` with `$in` to the row whose SQLite rowid equals that id.
        result = await self.mongo.distributions.update_one(
            {"_id": file_id, "state": {"$ne": UPLOADING}}, {"$set": {**fields, "state": INSTALLABLE}}
        )
        return result.matched_count == 1

    async def installable_files(self, project_id: int, name: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"project_id": project_id, "state": INSTALLABLE}
        if name is not None:
            query["name"] = name
        return [doc async for doc in self.mongo.distributions.find(query, {"core_metadata": 0})]

    async def installable_names(self, project_id: int) -> list[str]:
        names = {doc["name"] async for doc in self.mongo.distributions.find(
            {"project_id": project_id, "state": INSTALLABLE}, {"name": 1})}
        return sorted(names)

    # -- packages ------------------------------------------------------------------------------
    async def ensure_package(self, project_id: int, name: str, version: str, display: dict[str, Any]) -> int:
        """The package (project, normalised name, canonical version), created once. Returns its id."""
        query = {"project_id": project_id, "name": name, "version": version}
        existing = await self.mongo.packages.find_one(query)
        if existing:
            return int(existing["_id"])
        doc = {**query, **display, "_id": await self.mongo.next_id("packages"), "created_at": datetime.now(UTC)}
        try:
            await self.mongo.packages.insert_one(doc)
            return int(doc["_id"])
        except DuplicateKeyError:
            existing = await self.mongo.packages.find_one(query)
            assert existing is not None
            return int(existing["_id"])

    # -- core metadata -------------------------------------------------------------------------
    async def put_core_metadata(self, file_id: int, data: bytes) -> None:
        await self.mongo.core_metadata.update_one({"_id": file_id}, {"$set": {"data": data}}, upsert=True)

    async def get_core_metadata(self, file_id: int) -> bytes | None:
        doc = await self.mongo.core_metadata.find_one({"_id": file_id})
        return bytes(doc["data"]) if doc else None

    # -- precomputed simple documents ---------------------------------------------------------
    async def put_page(self, scope_kind: str, scope_id: int, name: str, entries: list[FileEntry],
                       versions: list[str]) -> None:
        key = page_key(scope_kind, scope_id, name)
        if not entries:
            await self.mongo.simple_pages.delete_one({"_id": key})
            return
        await self.mongo.simple_pages.update_one(
            {"_id": key},
            {"$set": {"scope_kind": scope_kind, "scope_id": scope_id, "name": name, "versions": versions,
                      "files": [e.to_doc() for e in entries], **_revision()}},
            upsert=True,
        )

    async def put_index(self, scope_kind: str, scope_id: int, names: list[str]) -> None:
        await self.mongo.simple_pages.update_one(
            {"_id": page_key(scope_kind, scope_id)},
            {"$set": {"scope_kind": scope_kind, "scope_id": scope_id, "names": names, **_revision()}},
            upsert=True,
        )

    async def get_page(self, scope_kind: str, scope_id: int, name: str | None = None) -> dict[str, Any] | None:
        return await self.mongo.simple_pages.find_one({"_id": page_key(scope_kind, scope_id, name)})

    async def get_pages(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several simple documents in one round trip, by `_id` (absent ones are left out)."""
        return {doc["_id"]: doc async for doc in self.mongo.simple_pages.find({"_id": {"$in": list(keys)}})}

    async def swap_page(self, key: str, stored: dict[str, Any] | None, fields: dict[str, Any] | None) -> bool:
        """Compare-and-swap one simple document: write `fields` (None: delete it) only if the stored document
        is still `stored` (None: absent). Every write stamps a fresh random `rev`, so a document deleted and
        created again never matches an older read. False when another writer came first."""
        if stored is None:
            if fields is None:
                return True
            try:
                await self.mongo.simple_pages.insert_one({"_id": key, **fields, **_revision()})
                return True
            except DuplicateKeyError:
                return False
        # `rev: None` also matches a document written before revisions existed (no `rev` field).
        query = {"_id": key, "rev": stored.get("rev")}
        if fields is None:
            return (await self.mongo.simple_pages.delete_one(query)).deleted_count == 1
        result = await self.mongo.simple_pages.update_one(query, {"$set": {**fields, **_revision()}})
        return result.matched_count == 1


def _revision() -> dict[str, Any]:
    return {"rev": uuid.uuid4().hex, "updated_at": datetime.now(UTC)}
