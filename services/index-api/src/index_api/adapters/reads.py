"""The MongoDB queries of the read path. Each is one round trip whose cost does not grow with files."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING

from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import INSTALLABLE, PackageRepository, page_key
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.records.files import StoredFile
from registry_shared.records.pages import PackagePageDoc, ScopeIndexDoc

# Only what the page and the download need; descriptions can be large.
# name, version and created_at: what supply-chain policy (SPEC §9) judges a download by.
_FILE_FIELDS = {"_id": 1, "project_id": 1, "package_id": 1, "filename": 1, "sha256": 1, "size": 1, "object_key": 1,
                "metadata_sha256": 1, "state": 1, "name": 1, "version": 1, "created_at": 1}


class MongoReadRepository:
    def __init__(self, mongo: Mongo) -> None:
        self.mongo = mongo
        self.tenancy = TenancyRepository(mongo)
        self.packages = PackageRepository(mongo)

    async def find_scope(self, kind: str, ref: str) -> dict[str, Any] | None:
        if kind == "project":
            return await self.tenancy.find_project(ref)
        return await self.tenancy.find_group(ref)

    async def instance_settings(self) -> dict[str, Any]:
        return await self.tenancy.instance_settings()

    async def groups(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        return [doc async for doc in self.mongo.groups.find({"_id": {"$in": list(ids)}})]

    async def descendant_projects(self, group_id: int) -> list[dict[str, Any]]:
        # `$in` rather than equality on the array: nx-27017 0.8.1 answers `{"ancestor_ids": id}` with nothing
        # once the multikey index exists (MongoDB treats both forms alike).
        return [doc async for doc in self.mongo.projects.find({"ancestor_ids": {"$in": [group_id]}})]

    async def scope_index(self, kind: str, scope_id: int) -> ScopeIndexDoc | None:
        return await self.packages.get_index(kind, scope_id)

    async def package_page(self, kind: str, scope_id: int, name: str) -> PackagePageDoc | None:
        return await self.packages.get_package_page(kind, scope_id, name)

    async def project_indexes(self, project_ids: Sequence[int]) -> list[ScopeIndexDoc]:
        return await self.packages.get_indexes([page_key("project", pid) for pid in project_ids])

    async def installable_file(self, project_ids: Sequence[int], sha256: str,
                               filename: str) -> StoredFile | None:
        """The file of the lowest project id among `project_ids` with this exact name and sha256."""
        if not project_ids:
            return None
        query = {"project_id": {"$in": list(project_ids)}, "filename": filename, "sha256": sha256,
                 "state": INSTALLABLE}
        cursor = self.mongo.distributions.find(query, _FILE_FIELDS).sort("project_id", ASCENDING).limit(1)
        async for doc in cursor:
            return StoredFile.from_doc(doc)
        return None

    async def core_metadata(self, file_id: int) -> bytes | None:
        return await self.packages.get_core_metadata(file_id)
