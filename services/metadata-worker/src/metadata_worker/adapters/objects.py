"""Stored distributions in S3: inspect one without downloading it whole, delete objects.

Inspection runs in a dedicated thread pool rather than the loop's default executor: an inspecting
thread waits on ranged reads that themselves run in the default executor, so sharing one pool could
starve it (every thread waiting for a read that has no thread left to run on).
"""
from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

from registry_shared.adapters.s3 import ObjectStore

from ..inspect import (
    ArchiveFormat,
    Expected,
    Inspection,
    InvalidDistribution,
    archive_format,
    inspect_sdist_tar,
    inspect_sdist_zip,
    inspect_wheel,
)
from .readers import READAHEAD, ObjectReadError, RangedReader, StreamReader

MISSING_OBJECT = "the uploaded file is missing from storage"


class S3Distributions:
    """The worker's view of the object store (the `Distributions` port of service.py)."""

    def __init__(self, store: ObjectStore, threads: int, readahead: int = READAHEAD) -> None:
        self.store = store
        self.readahead = readahead
        self._pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="inspect")

    async def inspect(self, object_key: str, filename: str, expected: Expected) -> Inspection:
        """Validate the archive at `object_key`; raises InvalidDistribution or ObjectReadError."""
        fmt = archive_format(filename)
        size = await self.store.size(object_key)
        if size is None:
            # Nothing to index; refusing it releases the reservation so the name can be uploaded again.
            raise InvalidDistribution(MISSING_OBJECT)
        if fmt is ArchiveFormat.SDIST_TAR:
            return await self._inspect_stream(object_key, expected)
        return await self._inspect_ranged(object_key, size, fmt, expected)

    async def _inspect_ranged(self, key: str, size: int, fmt: ArchiveFormat, expected: Expected) -> Inspection:
        loop = asyncio.get_running_loop()

        def fetch(offset: int, length: int) -> bytes:
            return asyncio.run_coroutine_threadsafe(self.store.get_range(key, offset, length), loop).result()

        reader = RangedReader(fetch, size, self.readahead)
        check = inspect_wheel if fmt is ArchiveFormat.WHEEL else inspect_sdist_zip
        try:
            return await loop.run_in_executor(self._pool, check, reader, expected)
        except InvalidDistribution as exc:
            # Belt and braces: a read that failed underneath must never pass for a bad archive.
            if reader.error is not None:
                raise ObjectReadError("ranged read failed") from reader.error
            raise exc

    async def _inspect_stream(self, key: str, expected: Expected) -> Inspection:
        loop = asyncio.get_running_loop()
        chunks = self.store.stream(key)
        reader = StreamReader(chunks, loop)
        try:
            return await loop.run_in_executor(self._pool, inspect_sdist_tar, reader, expected)
        except InvalidDistribution as exc:
            if reader.error is not None:
                raise ObjectReadError("streamed read failed") from reader.error
            raise exc
        finally:
            # Stops the download early and releases the connection; a cancelled read may still be running.
            with contextlib.suppress(RuntimeError):
                await chunks.aclose()  # type: ignore[attr-defined]

    async def delete(self, key: str) -> None:
        """Remove an object; removing one that is already gone succeeds (S3 semantics)."""
        await self.store.delete(key)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
