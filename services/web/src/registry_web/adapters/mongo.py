"""The web interface's MongoDB reads (and its sessions). Listings read the installable file documents of
the projects a visitor may read in one query, with a projection that leaves the README out."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from registry_shared.adapters.mongo import Mongo
from registry_shared.records.files import FileState, StoredFile
from registry_shared.records.packages import PackageRecord

from ..sessions import Session

INSTALLABLE = FileState.INSTALLABLE.value
# A listing's or a search's row: enough for name, version, summary, date and badges (the filename: the
# policy's blocked rules may name files).
ROW_FIELDS = {"_id": 1, "project_id": 1, "package_id": 1, "name": 1, "display_name": 1, "version": 1,
              "canonical_version": 1, "summary": 1, "created_at": 1, "indexed_at": 1, "yanked": 1, "filename": 1}
# A package page's files: everything shown, the README included, never the core metadata bytes.
FILE_FIELDS = {**ROW_FIELDS, "filename": 1, "size": 1, "sha256": 1, "uploader": 1, "kind": 1, "state": 1,
               "requires_python": 1, "requires_dist": 1, "description_html": 1, "description": 1,
               "description_content_type": 1, "author_email": 1, "keywords": 1}


class MongoCatalog:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo

    async def all_groups(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.mongo.groups.find({}).sort("path_lower", ASCENDING)]

    async def all_projects(self) -> list[dict[str, Any]]:
        return [doc async for doc in self.mongo.projects.find({}).sort("path_lower", ASCENDING)]

    async def find_by_path(self, kind: str, path: str) -> dict[str, Any] | None:
        collection = self.mongo.projects if kind == "project" else self.mongo.groups
        return await collection.find_one({"path_lower": path.strip("/").lower()})

    async def file_rows(self, project_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Installable files of these projects, as listing rows (raw documents with ROW_FIELDS)."""
        if not project_ids:
            return []
        query = {"project_id": {"$in": list(project_ids)}, "state": INSTALLABLE}
        return [doc async for doc in self.mongo.distributions.find(query, ROW_FIELDS)]

    async def find_package(self, project_id: int, package_id: int) -> dict[str, Any] | None:
        """The raw `packages` document (its status is not on it: `package_statuses`, read by the PolicyBook)."""
        return await self.mongo.packages.find_one({"_id": package_id, "project_id": project_id})

    async def package_files(self, project_id: int, package_id: int) -> list[tuple[StoredFile, dict[str, Any]]]:
        query = {"project_id": project_id, "package_id": package_id, "state": INSTALLABLE}
        cursor = self.mongo.distributions.find(query, FILE_FIELDS).sort("_id", ASCENDING)
        return [(StoredFile.from_doc(doc), doc) async for doc in cursor]

    async def name_rows(self, project_id: int, name: str) -> list[dict[str, Any]]:
        """Every installable file of one name in a project (each version's badges)."""
        query = {"project_id": project_id, "name": name, "state": INSTALLABLE}
        return [doc async for doc in self.mongo.distributions.find(query, ROW_FIELDS)]

    async def packages(self, ids: Sequence[int]) -> dict[int, PackageRecord]:
        if not ids:
            return {}
        return {int(doc["_id"]): PackageRecord.from_doc(doc)
                async for doc in self.mongo.packages.find({"_id": {"$in": list(ids)}})}

    async def core_metadata(self, file_id: int) -> bytes | None:
        doc = await self.mongo.core_metadata.find_one({"_id": file_id})
        return bytes(doc["data"]) if doc is not None else None

    async def usernames(self, user_ids: Sequence[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        return {int(doc["_id"]): str(doc["username"])
                async for doc in self.mongo.users.find({"_id": {"$in": list(user_ids)}}, {"username": 1})}

    async def token_expiry(self, token_id: int) -> Any:
        doc = await self.mongo.personal_tokens.find_one({"_id": token_id}, {"expires_at": 1})
        return doc.get("expires_at") if doc else None


class MongoSessions:
    """`web_sessions` {_id: sha256 of the session id, token_id, user_id, csrf, created_at, expires_at}."""

    def __init__(self, mongo: Mongo) -> None:
        self.collection = mongo.web_sessions

    async def put(self, session: Session) -> None:
        await self.collection.insert_one(session.to_doc())

    async def get(self, key: str) -> Session | None:
        doc = await self.collection.find_one({"_id": key})
        return Session.from_doc(doc) if doc is not None else None

    async def delete(self, key: str) -> None:
        await self.collection.delete_one({"_id": key})

    async def purge_expired(self, now: datetime) -> int:
        result = await self.collection.delete_many({"expires_at": {"$lt": now}})
        return result.deleted_count
