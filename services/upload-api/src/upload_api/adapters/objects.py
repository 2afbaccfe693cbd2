"""Streaming the file part into S3 while hashing (and inspecting) it, with flat memory and a size limit.

The object store's `put_stream_blocking` pulls from a blocking reader in a worker thread and fills one
reused part buffer; the reader fetches the request's chunks on the event loop, a batch per hop, and hands
them over without gathering them, so the body is never held in memory beyond one S3 part. The same thread
feeds each chunk to the inspector, so a bad archive stops the upload (and aborts the multipart upload)
as soon as its bytes show it.

A file part of up to WHOLE_MAX bytes (most wheels and sdists) is `hold`: read on the event loop and hashed
(the use case then reserves its name, with its size and digests), then `put_held` sends it to S3 while the
inspector reads it whole in another thread (a refused file's object is removed); the streaming pass's
hand-overs (a thread pulling chunks from the loop, the inspector's own thread, a second call for the
verdict) cost more than such a file's bytes do.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections import deque

from registry_shared.adapters.s3 import ObjectStore
from registry_shared.errors import PayloadTooLarge

from ..ports import Content, Held, Inspector, StoredBlob

READ_CHUNK = 256 * 1024
BATCH_BYTES = 1024 * 1024  # read from the request per hop to the event loop
WHOLE_MAX = 256 * 1024  # a file part this small is held whole (well below RESERVE_AHEAD: it never waits)
INLINE_HASH = 64 * 1024  # hashed on the event loop up to this size (~0.3 ms), in a thread above


async def _read_batch(content: Content) -> list[bytes]:
    """Chunks of `content` adding up to about BATCH_BYTES; empty at the end of the part."""
    chunks: list[bytes] = []
    size = 0
    while size < BATCH_BYTES:
        chunk = await content.read(READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks


class _Replayed:
    """`content` with the chunks already read from it put back in front (a `Content` itself)."""

    def __init__(self, chunks: list[bytes], content: Content) -> None:
        self._chunks = deque(chunks)
        self._content = content

    @property
    def filename(self) -> str:
        return self._content.filename

    async def drain(self, limit: int | None = None) -> bool:
        self._chunks.clear()
        return await self._content.drain(limit)

    async def finish(self) -> None:
        await self._content.finish()

    async def read(self, size: int) -> bytes:
        if not self._chunks:
            return await self._content.read(size)
        chunk = self._chunks.popleft()
        if len(chunk) > size:
            self._chunks.appendleft(chunk[size:])
            chunk = chunk[:size]
        return chunk


async def _read_whole(content: Content, most: int) -> tuple[list[bytes], bool]:
    """The chunks of `content` while they add up to at most `most` bytes; True if that was all of it."""
    chunks: list[bytes] = []
    size = 0
    while size <= most:
        chunk = await content.read(READ_CHUNK)
        if not chunk:
            return chunks, True
        chunks.append(chunk)
        size += len(chunk)
    return chunks, False


class _HashingReader:
    """A blocking, file-like view of the file part, for use from a worker thread only."""

    def __init__(self, content: Content, loop: asyncio.AbstractEventLoop, limit: int,
                 inspector: Inspector | None = None) -> None:
        self._content = content
        self._loop = loop
        self._limit = limit
        self._inspector = inspector
        self._chunks: deque[bytes] = deque()
        self._eof = False
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.blake2 = hashlib.blake2b(digest_size=32)

    def _pull(self) -> None:
        chunks = asyncio.run_coroutine_threadsafe(_read_batch(self._content), self._loop).result()
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
            if self._inspector is not None:
                self._inspector.feed(chunk)
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

    def blob(self, metadata: bytes | None = None) -> StoredBlob:
        return StoredBlob(self.size, self.sha256.hexdigest(), self.md5.hexdigest(), self.blake2.hexdigest(),
                          metadata)


def _digests(data: bytes) -> StoredBlob:
    md5 = hashlib.md5(data, usedforsecurity=False)
    return StoredBlob(len(data), hashlib.sha256(data).hexdigest(), md5.hexdigest(),
                      hashlib.blake2b(data, digest_size=32).hexdigest())


class S3Blobs:
    """The `Blobs` port over the shared ObjectStore."""

    def __init__(self, objects: ObjectStore, part_size: int) -> None:
        self.objects = objects
        self.part_size = part_size

    async def hold(self, content: Content, limit: int, inspector: Inspector | None) -> Held | Content:
        """A file part of at most WHOLE_MAX bytes, read and hashed, with nothing written; a larger one as a
        `Content` to `put` (what was read put back in front)."""
        try:
            chunks, whole = await _read_whole(content, min(WHOLE_MAX, limit))
        except BaseException:
            if inspector is not None:
                inspector.abort()
            raise
        if not whole:
            return _Replayed(chunks, content)
        data = b"".join(chunks)
        blob = _digests(data) if len(data) <= INLINE_HASH else await asyncio.to_thread(_digests, data)
        return Held(data, blob, inspector)

    async def put_held(self, key: str, held: Held) -> StoredBlob:
        inspector = held.inspector
        judging = asyncio.ensure_future(asyncio.to_thread(inspector.inspect, held.data)) if inspector else None
        putting = asyncio.ensure_future(asyncio.to_thread(self.objects.put_blocking, key, held.data))
        # Threads cannot be stopped: both finish even when cancelled, so what follows (a clean-up) comes after.
        both = asyncio.gather(putting, *([judging] if judging else []), return_exceptions=True)
        try:
            await asyncio.shield(both)
        finally:
            outcome = await both
        stored, *judged = outcome
        verdict = judged[0] if judged else None
        if isinstance(verdict, BaseException):
            if not isinstance(stored, BaseException):
                await self.objects.delete(key)  # stored, and refused: removed
            raise verdict
        if isinstance(stored, BaseException):
            raise stored
        return dataclasses.replace(held.blob, metadata=verdict.metadata_bytes if verdict is not None else None)

    async def put(self, key: str, content: Content, limit: int, inspector: Inspector | None) -> StoredBlob:
        reader = _HashingReader(content, asyncio.get_running_loop(), limit, inspector)
        try:
            await asyncio.to_thread(self.objects.put_stream_blocking, key, reader, self.part_size)
        except BaseException:
            if inspector is not None:
                inspector.abort()
            raise
        if inspector is None:
            return reader.blob()
        try:
            inspection = await asyncio.to_thread(inspector.finish)
        except BaseException:
            await self.objects.delete(key)  # the bytes are all stored, and refused: remove them
            raise
        return reader.blob(inspection.metadata_bytes)

    async def delete(self, key: str) -> None:
        await self.objects.delete(key)
