"""Package files, packages, core metadata and the precomputed simple documents in MongoDB.

A `distributions` document is first a reservation of `(project_id, filename)` (state `uploading`),
then `processing` once its bytes are stored, then `installable` once the worker indexed it.
The unique index on `(project_id, filename)` is what makes concurrent uploads of one filename safe.
An `uploading` reservation holds a lease (`lease_until`) that its upload renews while it streams: one whose
lease ran out was abandoned (its process died, or the database failed while it was being undone) and the
next upload of that filename reclaims it, so nothing can block a retry for longer than one lease.
"""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..domain.simple import FileEntry
from ..records.files import FileState, IndexedFields, StoredFile
from ..records.packages import PackageRecord
from ..records.pages import PACKED_FIELDS, PackagePageDoc, ScopeIndexDoc, packed, page_key, unpacked
from .mongo import Mongo

# The states as stored strings, for queries.
UPLOADING, PROCESSING, INSTALLABLE = FileState.UPLOADING.value, FileState.PROCESSING.value, FileState.INSTALLABLE.value
DELETING = FileState.DELETING.value

DUPLICATE_KEY = 11000  # MongoDB's error code, also nx-27017's

__all__ = ["INSTALLABLE", "PROCESSING", "UPLOADING", "PackageRepository", "page_key"]


class PackageRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    # -- reservations and files ----------------------------------------------------------------
    async def reserve(self, file: StoredFile, lease: float = 30.0) -> tuple[bool, StoredFile]:
        """Insert `file` as a reservation leased for `lease` seconds (its id, state and times are assigned
        here). Returns (True, the reservation) if ours, else (False, the existing document)."""
        now = datetime.now(UTC)
        doc = dataclasses.replace(file, id=await self.mongo.next_id("files"), state=FileState.UPLOADING,
                                  created_at=now, lease_until=now + timedelta(seconds=lease))
        try:
            await self.mongo.distributions.insert_one(doc.to_doc())
            return True, doc
        except DuplicateKeyError:
            existing = await self.find_file(doc.project_id, doc.filename)
            if existing is None:  # released between our insert and our read: try once more
                return await self.reserve(file, lease)
            return False, existing

    async def renew_lease(self, file_id: int, upload_id: str, lease: float) -> bool:
        """Extend our `uploading` reservation's lease; False if it is no longer ours (it was reclaimed)."""
        result = await self.mongo.distributions.update_one(
            {"_id": file_id, "upload_id": upload_id, "state": UPLOADING},
            {"$set": {"lease_until": datetime.now(UTC) + timedelta(seconds=lease)}})
        return result.matched_count == 1

    async def reclaim(self, file: StoredFile) -> bool:
        """Drop an abandoned reservation (`StoredFile.abandoned`), unless it changed since it was read."""
        # A reservation always has its upload_id; `None` matches one stored without it.
        result = await self.mongo.distributions.delete_one(
            {"_id": file.id, "upload_id": file.upload_id or None, "state": UPLOADING})
        return result.deleted_count == 1

    async def find_file(self, project_id: int, filename: str) -> StoredFile | None:
        doc = await self.mongo.distributions.find_one({"project_id": project_id, "filename": filename})
        return StoredFile.from_doc(doc) if doc is not None else None

    async def get_file(self, file_id: int) -> StoredFile | None:
        doc = await self.mongo.distributions.find_one({"_id": file_id})
        return StoredFile.from_doc(doc) if doc is not None else None

    async def mark_stored(self, file_id: int, upload_id: str, *, size: int, sha256: str, md5: str,
                          blake2_256: str) -> bool:
        """Record the stored bytes' size and digests (`processing`), if the reservation is still ours."""
        fields = {"size": size, "sha256": sha256, "md5": md5, "blake2_256": blake2_256, "state": PROCESSING}
        result = await self.mongo.distributions.update_one(
            {"_id": file_id, "upload_id": upload_id, "state": UPLOADING}, {"$set": fields})
        return result.modified_count == 1

    async def release(self, file_id: int, upload_id: str | None = None) -> bool:
        """Drop a reservation that never became installable (a failed or rejected upload)."""
        query: dict[str, Any] = {"_id": file_id, "state": {"$ne": INSTALLABLE}}
        if upload_id:
            query["upload_id"] = upload_id
        result = await self.mongo.distributions.delete_one(query)
        return result.deleted_count == 1

    async def mark_installable(self, file_id: int, fields: IndexedFields,
                               upload_id: str | None = None) -> StoredFile | None:
        """Make a stored file installable with its indexed fields. Returns the document as it now is (without
        its description and core metadata), None if there is no stored file `file_id`.

        With `upload_id` (the upload that published it), the reservation may still be `uploading`: upload-api
        publishes its stored file without marking it first, and keeps its lease until the verdict comes (or
        marks it `processing` when it stops waiting). Without, the file must have been marked stored."""
        # `$ne` rather than `$in: [...]`: nx-27017 applies an update whose filter combines an integer `_id`
        # with `$in` to the row whose SQLite rowid equals that id.
        query: dict[str, Any] = {"_id": file_id, "state": {"$ne": UPLOADING}}
        if upload_id:
            query = {"_id": file_id, "upload_id": upload_id, "state": {"$ne": DELETING}}
        doc = await self.mongo.distributions.find_one_and_update(
            query, {"$set": {**fields.to_set(), "state": INSTALLABLE}},
            projection={"description": 0, "core_metadata": 0}, return_document=ReturnDocument.AFTER,
        )
        return StoredFile.from_doc(doc) if doc is not None else None

    async def installable_files(self, project_id: int, name: str | None = None) -> list[StoredFile]:
        query: dict[str, Any] = {"project_id": project_id, "state": INSTALLABLE}
        if name is not None:
            query["name"] = name
        return [StoredFile.from_doc(doc) async for doc in self.mongo.distributions.find(query, {"core_metadata": 0})]

    async def installable_names(self, project_id: int) -> list[str]:
        names = {doc["name"] async for doc in self.mongo.distributions.find(
            {"project_id": project_id, "state": INSTALLABLE}, {"name": 1})}
        return sorted(names)

    # -- packages ------------------------------------------------------------------------------
    async def ensure_package(self, package: PackageRecord) -> int:
        """The package (project, normalised name, canonical version) of `package`, created once (its id and
        `created_at` assigned here). Returns its id."""
        query = {"project_id": package.project_id, "name": package.name, "version": package.version}
        # One round trip for a new version (the common case on upload): an insert under the unique index (ids
        # come in blocks, so a wasted one costs nothing; nx-27017 inserts in half the time of an upsert); a
        # version that exists takes a second one, to read its id.
        created = dataclasses.replace(package, id=await self.mongo.next_id("packages"), created_at=datetime.now(UTC))
        try:
            await self.mongo.packages.insert_one(created.to_doc())
            return created.id
        except DuplicateKeyError:  # the version exists (or a concurrent upload inserted it first)
            pass
        existing = await self.mongo.packages.find_one(query, {"_id": 1})
        if existing is None:  # cannot happen: it matched, or a concurrent upsert inserted it
            raise RuntimeError(f"package {query} neither inserted nor found")
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
        fields = {"scope_kind": scope_kind, "scope_id": scope_id, "name": name, "versions": versions,
                  "files": [e.to_doc() for e in entries]}
        await self.mongo.simple_pages.update_one({"_id": key}, _page_update(fields, new_revision()), upsert=True)

    async def put_index(self, scope_kind: str, scope_id: int, names: list[str]) -> None:
        fields = {"scope_kind": scope_kind, "scope_id": scope_id, "names": names}
        await self.mongo.simple_pages.update_one({"_id": page_key(scope_kind, scope_id)},
                                                 _page_update(fields, new_revision()), upsert=True)

    async def get_index(self, scope_kind: str, scope_id: int) -> ScopeIndexDoc | None:
        doc = await self.mongo.simple_pages.find_one({"_id": page_key(scope_kind, scope_id)})
        return ScopeIndexDoc.from_doc(doc) if doc is not None else None

    async def get_indexes(self, keys: Sequence[str]) -> list[ScopeIndexDoc]:
        """Several scopes' indexes in one round trip, by `_id` (absent ones are left out)."""
        if not keys:
            return []
        return [ScopeIndexDoc.from_doc(doc) async for doc in self.mongo.simple_pages.find({"_id": {"$in": list(keys)}})]

    async def get_package_page(self, scope_kind: str, scope_id: int, name: str) -> PackagePageDoc | None:
        doc = await self.mongo.simple_pages.find_one({"_id": page_key(scope_kind, scope_id, name)})
        return PackagePageDoc.from_doc(doc) if doc is not None else None

    async def get_pages(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several simple documents in one round trip, by `_id` (absent ones are left out), their lists
        unpacked (`records.pages.unpacked`)."""
        if not keys:
            return {}
        return {doc["_id"]: unpacked(doc)
                async for doc in self.mongo.simple_pages.find({"_id": {"$in": list(keys)}})}

    async def swap_page(self, key: str, stored: dict[str, Any] | None, fields: dict[str, Any] | None,
                        revision: dict[str, Any] | None = None) -> bool:
        """Compare-and-swap one simple document: write `fields` (None: delete it) only if the stored document
        is still `stored` (None: absent). Every write stamps a fresh random `rev` (`revision`, else a new
        one), so a document deleted and created again never matches an older read. False when another writer
        came first. `stored` and `fields` hold plain lists; they are stored packed (`records.pages.packed`)."""
        stamp = revision or new_revision()
        if stored is None:
            if fields is None:
                return True
            try:
                await self.mongo.simple_pages.insert_one({"_id": key, **packed(fields), **stamp})
                return True
            except DuplicateKeyError:
                return False
        # `rev: None` also matches a document written before revisions existed (no `rev` field).
        query = {"_id": key, "rev": stored.get("rev")}
        if fields is None:
            return (await self.mongo.simple_pages.delete_one(query)).deleted_count == 1
        result = await self.mongo.simple_pages.update_one(query, _page_update(fields, stamp))
        return result.matched_count == 1

    async def swap_pages(self, writes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any]]],
                         revisions: Sequence[dict[str, Any]]) -> list[bool]:
        """Several `swap_page` writes (key, stored, fields; never a deletion) in one round trip: an unordered
        bulk write of their inserts and updates, each stamping its revision. Per write, whether it is known
        to have been written. A failed insert is known (its duplicate key error); a failed update is not
        (only the number matched is), so when any update matched nothing, every update counts as failed
        although some were written: the caller reads them again, as after any failed swap."""
        if len(writes) == 1:
            return [await self.swap_page(*writes[0], revisions[0])]
        ops: list[InsertOne[Any] | UpdateOne] = [
            InsertOne({"_id": key, **packed(fields), **stamp}) if stored is None
            else UpdateOne({"_id": key, "rev": stored.get("rev")}, _page_update(fields, stamp))
            for (key, stored, fields), stamp in zip(writes, revisions, strict=True)]
        try:
            result = await self.mongo.simple_pages.bulk_write(ops, ordered=False)
            matched, refused = result.matched_count, set[int]()
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
            matched = error.details.get("nMatched", 0)
            refused = {e["index"] for e in error.details["writeErrors"]}
        updates_written = matched == sum(1 for _, stored, _ in writes if stored is not None)
        return [at not in refused if stored is None else updates_written
                for at, (_, stored, _) in enumerate(writes)]


def _page_update(fields: dict[str, Any], stamp: dict[str, Any]) -> dict[str, Any]:
    """The update that stores `fields` packed, removing the plain list a document written before packing
    holds (`$unset` of an absent field changes nothing, and costs nx-27017 next to nothing)."""
    update: dict[str, Any] = {"$set": {**packed(fields), **stamp}}
    if unset := {plain: "" for plain in PACKED_FIELDS if plain in fields}:
        update["$unset"] = unset
    return update


def new_revision() -> dict[str, Any]:
    """The fields every write of a simple document stamps: a fresh random `rev`, and the time."""
    return {"rev": uuid.uuid4().hex, "updated_at": datetime.now(UTC)}

