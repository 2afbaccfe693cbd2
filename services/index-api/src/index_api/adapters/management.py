"""The MongoDB side of the Packages API (E10-E13): packages and their files, and deletion's writes.

nx-27017 applies an update or delete whose filter combines an integer `_id` with `$in` to the wrong row,
so every write here names one `_id` with plain equalities (contracts.md).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from registry_shared.adapters.mongo import Mongo
from registry_shared.records.files import FileState, StoredFile
from registry_shared.records.packages import PackageRecord

INSTALLABLE, DELETING = FileState.INSTALLABLE.value, FileState.DELETING.value
# What the Packages API shows of a file; never the core metadata bytes.
_FILE_FIELDS = {"_id": 1, "project_id": 1, "package_id": 1, "filename": 1, "name": 1, "size": 1, "md5": 1,
                "sha256": 1, "object_key": 1, "state": 1, "created_at": 1, "requires_dist": 1,
                "summary": 1, "description": 1, "description_content_type": 1, "keywords": 1, "author_email": 1,
                "requires_python": 1, "metadata_version": 1, "yanked": 1, "downloads": 1,
                "last_downloaded_at": 1}


class MongoManagementRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    async def projects(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        # Whole documents: the delete right (E10's `delete_api_path`) is decided from them.
        cursor = self.mongo.projects.find({"_id": {"$in": list(ids)}})
        return {int(doc["_id"]): doc async for doc in cursor}

    async def listed_packages(self, project_ids: Sequence[int]) -> list[PackageRecord]:
        """Packages of these projects with at least one installable file (two queries, no join)."""
        if not project_ids:
            return []
        ids = list(project_ids)
        with_files = {doc.get("package_id") async for doc in self.mongo.distributions.find(
            {"project_id": {"$in": ids}, "state": INSTALLABLE}, {"package_id": 1})}
        return [PackageRecord.from_doc(doc) async for doc in self.mongo.packages.find({"project_id": {"$in": ids}})
                if doc["_id"] in with_files]

    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None:
        doc = await self.mongo.packages.find_one({"_id": package_id, "project_id": project_id})
        return PackageRecord.from_doc(doc) if doc is not None else None

    async def package_versions(self, project_id: int, name: str) -> list[PackageRecord]:
        """Every package of this name in the project that has an installable file."""
        return [p for p in await self.listed_packages([project_id]) if p.name == name]

    async def files(self, project_id: int, package_id: int, states: Sequence[FileState] = (FileState.INSTALLABLE,)
                    ) -> list[StoredFile]:
        query = {"project_id": project_id, "package_id": package_id, "state": {"$in": [str(s) for s in states]}}
        cursor = self.mongo.distributions.find(query, _FILE_FIELDS).sort("_id", ASCENDING)
        return [StoredFile.from_doc(doc) async for doc in cursor]

    async def mark_deleting(self, file_id: int, project_id: int) -> None:
        await self.mongo.distributions.update_one({"_id": file_id, "project_id": project_id},
                                                  {"$set": {"state": DELETING}})

    async def remove_file(self, file_id: int) -> None:
        await self.mongo.core_metadata.delete_one({"_id": file_id})
        await self.mongo.distributions.delete_one({"_id": file_id, "state": DELETING})

    async def drop_package_if_empty(self, package: PackageRecord) -> bool:
        """Remove the package document once no file refers to it. True if it is gone."""
        if await self._referenced(package.id):
            return False
        await self.mongo.packages.delete_one({"_id": package.id, "project_id": package.project_id})
        # The worker may have attached a new file between the check and the delete (it found the package a
        # moment before): put the document back so that file keeps its package.
        if await self._referenced(package.id):
            with contextlib.suppress(DuplicateKeyError):  # insert, not `$set`: keeps `created_at` a datetime
                await self.mongo.packages.insert_one(package.to_doc())
            return False
        return True

    async def _referenced(self, package_id: int) -> bool:
        return await self.mongo.distributions.find_one({"package_id": package_id}, {"_id": 1}) is not None
