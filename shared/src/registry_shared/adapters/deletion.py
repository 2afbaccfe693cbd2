"""The MongoDB side of deleting packages and files (`registry_shared.deletion`), shared by index-api's
Packages API and the web interface.

nx-27017 applies an update or delete whose filter combines an integer `_id` with `$in` to the wrong row,
so every write here names one `_id` with plain equalities (contracts.md).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from ..records.files import FileState, StoredFile
from ..records.packages import PackageRecord
from .mongo import Mongo

DELETING = FileState.DELETING.value
# What the Packages API and the web pages show of a file; never the core metadata bytes nor the README.
FILE_FIELDS = {"_id": 1, "project_id": 1, "package_id": 1, "filename": 1, "name": 1, "size": 1, "md5": 1,
               "sha256": 1, "object_key": 1, "state": 1, "created_at": 1, "requires_dist": 1,
               "summary": 1, "description": 1, "description_content_type": 1, "keywords": 1, "author_email": 1,
               "requires_python": 1, "metadata_version": 1, "yanked": 1, "downloads": 1,
               "last_downloaded_at": 1}


class MongoDeletionRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    async def find_package(self, project_id: int, package_id: int) -> PackageRecord | None:
        doc = await self.mongo.packages.find_one({"_id": package_id, "project_id": project_id})
        return PackageRecord.from_doc(doc) if doc is not None else None

    async def files(self, project_id: int, package_id: int, states: Sequence[FileState] = (FileState.INSTALLABLE,)
                    ) -> list[StoredFile]:
        query = {"project_id": project_id, "package_id": package_id, "state": {"$in": [str(s) for s in states]}}
        cursor = self.mongo.distributions.find(query, FILE_FIELDS).sort("_id", ASCENDING)
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
