"""Proxied files in S3 through the shared ObjectStore (its blocking calls run in worker threads)."""
from __future__ import annotations

import asyncio
import zipfile
from collections.abc import AsyncIterator
from typing import IO

from registry_shared.adapters.readers import ObjectReadError, RangedReader, SeekableReader
from registry_shared.adapters.s3 import ObjectStore

MAX_METADATA_SIZE = 5 * 1024 * 1024


class S3ProxyBlobs:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """Started before any header is sent, so a missing object can still be fetched anew."""
        return await self.store.open(key, offset, length)

    def put_stream_blocking(self, key: str, reader: IO[bytes], part_size: int) -> None:
        self.store.put_stream_blocking(key, reader, part_size)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self.store.put_bytes(key, data)

    async def read(self, key: str) -> bytes | None:
        chunks = await self.open(key, 0, 0)
        if chunks is None:
            return None
        return b"".join([chunk async for chunk in chunks])

    async def wheel_metadata(self, key: str, size: int) -> bytes | None:
        """Only the central directory and the METADATA member are fetched (ranged reads), never the wheel."""
        def fetch(offset: int, length: int) -> bytes:
            return self.store.get_range_blocking(key, offset, length)

        reader = RangedReader(fetch, size)
        data = await asyncio.to_thread(wheel_metadata, reader)
        if data is None and reader.error is not None:  # S3 failed, not the wheel: try again another time
            raise ObjectReadError("ranged read failed") from reader.error
        return data


def wheel_metadata(fp: SeekableReader) -> bytes | None:
    """`<name>-<version>.dist-info/METADATA` of a wheel read through a seekable file; None when there is not
    exactly one, or it is unreasonably big."""
    try:
        with zipfile.ZipFile(fp) as zf:
            found = [i for i in zf.infolist()
                     if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/METADATA")]
            if len(found) != 1 or found[0].file_size > MAX_METADATA_SIZE:
                return None
            with zf.open(found[0]) as member:
                data = member.read(MAX_METADATA_SIZE + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, ValueError, OSError):
        return None
    return data if len(data) <= MAX_METADATA_SIZE else None
