"""Streaming a multipart part into S3 while hashing it, with flat memory and a size limit.

The object store's `put_stream_blocking` pulls from a blocking reader in a worker thread and fills one
reused part buffer; the reader fetches the request's chunks on the event loop, a batch per hop, and hands
them over without gathering them, so the body is never held in memory beyond one S3 part.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from dataclasses import dataclass

from aiohttp import BodyPartReader

from registry_shared.adapters.s3 import ObjectStore
from registry_shared.errors import PayloadTooLarge

from .multipart import read_chunk

READ_CHUNK = 256 * 1024
BATCH_BYTES = 1024 * 1024  # read from the request per hop to the event loop


@dataclass(frozen=True)
class StoredBlob:
    size: int
    sha256: str
    md5: str
    blake2_256: str


async def _read_batch(part: BodyPartReader) -> list[bytes]:
    """Chunks of `part` adding up to about BATCH_BYTES; empty at the end of the part."""
    chunks: list[bytes] = []
    size = 0
    while size < BATCH_BYTES:
        chunk = await read_chunk(part, READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks


class _HashingPartReader:
    """A blocking, file-like view of an aiohttp body part, for use from a worker thread only."""

    def __init__(self, part: BodyPartReader, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._part = part
        self._loop = loop
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.blake2 = hashlib.blake2b(digest_size=32)

    def _pull(self) -> None:
        chunks = asyncio.run_coroutine_threadsafe(_read_batch(self._part), self._loop).result()
        if not chunks:
            self._eof = True
            return
        for chunk in chunks:
            self.size += len(chunk)
            if self.size > self._limit:
                raise PayloadTooLarge()
            self.sha256.update(chunk)
            self.md5.update(chunk)
            self.blake2.update(chunk)
        self._chunks.extend(chunks)

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes (all that is left when negative); b"" only at the end."""
        if not self._chunks and not self._eof:
            self._pull()
        if size < 0:
            while not self._eof:
                self._pull()
            out = b"".join(self._chunks)
            self._chunks.clear()
            return out
        if not self._chunks:
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > size:
            self._chunks.appendleft(chunk[size:])
            chunk = chunk[:size]
        return bytes(chunk)

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
