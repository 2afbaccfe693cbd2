"""Distribution bytes from S3 through the shared ObjectStore (its blocking calls run in threads)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from registry_shared.adapters.s3 import ObjectStore

PRESIGNED_TTL = timedelta(minutes=15)


class S3Blobs:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """Start the download before any header is sent, so a missing object is a 404, not a cut body."""
        return await self.store.open(key, offset, length)

    async def presigned_url(self, key: str, filename: str) -> str:
        return await asyncio.to_thread(self.store.presigned_get, key, PRESIGNED_TTL, filename)
