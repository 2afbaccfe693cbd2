"""Distribution bytes from S3 through the shared ObjectStore (its blocking calls run in threads)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from minio.error import S3Error

from registry_shared.adapters.s3 import ObjectStore

_MISSING_CODES = {"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"}
PRESIGNED_TTL = timedelta(minutes=15)


class S3Blobs:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """Start the download before any header is sent, so a missing object is a 404, not a cut body."""
        chunks = self.store.stream(key, offset=offset, length=length)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except S3Error as exc:
            await chunks.aclose()
            if exc.code in _MISSING_CODES:
                return None
            raise
        return _prepend(first, chunks)

    async def presigned_url(self, key: str, filename: str) -> str:
        return await asyncio.to_thread(self.store.presigned_get, key, PRESIGNED_TTL, filename)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
