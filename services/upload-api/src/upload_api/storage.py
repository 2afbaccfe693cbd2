"""Streaming a multipart part into S3 while hashing it, with flat memory and a size limit.

minio's `put_object` pulls from a blocking reader in a worker thread; the reader pulls each chunk from
the request on the event loop, so the body is never held in memory beyond one S3 part.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from aiohttp import BodyPartReader

from registry_shared.adapters.s3 import ObjectStore
from registry_shared.errors import PayloadTooLarge

READ_CHUNK = 256 * 1024


@dataclass(frozen=True)
class StoredBlob:
    size: int
    sha256: str
    md5: str
    blake2_256: str


class _HashingPartReader:
    """A blocking, file-like view of an aiohttp body part, for use from a worker thread only."""

    def __init__(self, part: BodyPartReader, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._part = part
        self._loop = loop
        self._limit = limit
        self._buffer = bytearray()
        self._eof = False
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.blake2 = hashlib.blake2b(digest_size=32)

    def _pull(self) -> None:
        chunk = asyncio.run_coroutine_threadsafe(self._part.read_chunk(READ_CHUNK), self._loop).result()
        if not chunk:
            self._eof = True
            return
        self.size += len(chunk)
        if self.size > self._limit:
            raise PayloadTooLarge()
        self.sha256.update(chunk)
        self.md5.update(chunk)
        self.blake2.update(chunk)
        self._buffer += chunk

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            self._pull()
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
            return out
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def blob(self) -> StoredBlob:
        return StoredBlob(self.size, self.sha256.hexdigest(), self.md5.hexdigest(), self.blake2.hexdigest())


async def stream_to_store(store: ObjectStore, key: str, part: BodyPartReader, limit: int,
                          part_size: int) -> StoredBlob:
    """Write `part` to `key`, returning its size and digests. On any error nothing is left stored."""
    reader = _HashingPartReader(part, asyncio.get_running_loop(), limit)
    await asyncio.to_thread(store.put_stream_blocking, key, reader, part_size)
    return reader.blob()


async def hash_only(part: BodyPartReader, limit: int) -> StoredBlob:
    """Consume `part` computing its digests, storing nothing (an identical re-upload needs no copy)."""
    reader = _HashingPartReader(part, asyncio.get_running_loop(), limit)

    def _consume() -> None:
        while reader.read(READ_CHUNK * 16):
            pass

    await asyncio.to_thread(_consume)
    return reader.blob()
