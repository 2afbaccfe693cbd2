"""The MongoDB side of the Packages API (E10-E13): packages and their files; deletion's writes are
`registry_shared.adapters.deletion`'s, which the web interface's delete form uses too."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from registry_shared.adapters.deletion import MongoDeletionRepository
from registry_shared.records.files import FileState
from registry_shared.records.packages import PackageRecord

INSTALLABLE = FileState.INSTALLABLE.value


class MongoManagementRepository(MongoDeletionRepository):
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

    async def package_versions(self, project_id: int, name: str) -> list[PackageRecord]:
        """Every package of this name in the project that has an installable file."""
        return [p for p in await self.listed_packages([project_id]) if p.name == name]

