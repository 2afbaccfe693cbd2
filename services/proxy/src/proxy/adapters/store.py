"""The proxy's MongoDB documents.

- `proxy_pages` `{_id: normalised name, found, fetched_at (epoch seconds), etag, versions, files: [...],
  sizes: [[filename, size learned by HEAD], ...]}`
- `proxy_dists` `{_id: "<sha256>/<filename>", name, <UpstreamFile fields>, stored, stored_size,
  local_metadata_sha256, metadata_stored}`: every file of every page served, so a file URL handed out can
  be resolved by any replica. (Not `proxy_files`: nx-27017 takes `*_files` collections for GridFS.)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne

from registry_shared.adapters.mongo import Mongo

from ..files import ProxiedFile, file_key
from ..pages import Learned, ProxiedPage
from ..upstream import UpstreamFile

PAGES = "proxy_pages"
DISTS = "proxy_dists"
BULK = 500  # upserts per round trip when a page lists thousands of files


class MongoProxyStore:
    def __init__(self, mongo: Mongo) -> None:
        self.pages = mongo.db[PAGES]
        self.dists = mongo.db[DISTS]

    async def ensure_indexes(self) -> None:
        await self.dists.create_index([("name", ASCENDING), ("stored", ASCENDING)])

    async def load_page(self, name: str) -> ProxiedPage | None:
        doc = await self.pages.find_one({"_id": name})
        return ProxiedPage.from_doc(doc) if doc else None

    async def save_page(self, page: ProxiedPage) -> None:
        doc = page.to_doc()
        await self.pages.update_one({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True)

    async def touch_page(self, name: str, fetched_at: float, etag: str | None) -> None:
        await self.pages.update_one({"_id": name}, {"$set": {"fetched_at": fetched_at, "etag": etag}})

    async def register_files(self, name: str, files: Sequence[UpstreamFile]) -> None:
        # $set of the upstream fields only: what the proxy stored of a file (stored_size, ...) survives.
        ops = [UpdateOne({"_id": file_key(f.sha256, f.filename)}, {"$set": {"name": name, **f.to_doc()}},
                         upsert=True) for f in files]
        for start in range(0, len(ops), BULK):
            await self.dists.bulk_write(ops[start:start + BULK], ordered=False)

    async def learned(self, name: str) -> dict[str, Learned]:
        found: dict[str, Learned] = {}
        async for doc in self.dists.find({"name": name, "stored": True},
                                         {"filename": 1, "stored_size": 1, "local_metadata_sha256": 1}):
            found[doc["filename"]] = Learned(doc.get("stored_size"), doc.get("local_metadata_sha256"))
        return found

    async def find_file(self, sha256: str, filename: str) -> ProxiedFile | None:
        doc = await self.dists.find_one({"_id": file_key(sha256, filename)})
        return ProxiedFile.from_doc(doc) if doc else None

    async def mark_stored(self, file: ProxiedFile, size: int) -> None:
        await self.dists.update_one({"_id": file.key}, {"$set": {"stored": True, "stored_size": size}})

    async def mark_metadata(self, file: ProxiedFile, sha256: str, extracted: bool) -> None:
        fields: dict[str, Any] = {"metadata_stored": True}
        if extracted:
            fields["local_metadata_sha256"] = sha256
        await self.dists.update_one({"_id": file.key}, {"$set": fields})
