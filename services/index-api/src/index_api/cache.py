"""In-process caches: rendered simple pages (dropped by `index.changed`), short-lived access lookups, and
the bytes of recently downloaded files.

Every replica holds its own copy; the events each replica receives on its private queue keep them right.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection, Iterable
from typing import Any, NamedTuple

from registry_shared.access_cache import MISSING, TtlCache
from registry_shared.domain.names import normalize_name
from registry_shared.logging import get_logger

from .ports import Blobs

log = get_logger()
__all__ = ["MISSING", "TtlCache"]  # shared with upload-api (registry_shared.access_cache), re-exported here


class PageKey(NamedTuple):
    """One rendered page: its scope, name (None = the index), format, and for a group the readable set.

    A tuple: it is built and hashed on every page request, at under half the cost of a frozen dataclass.
    """

    scope_kind: str
    scope_id: int
    name: str | None
    content_type: str
    readable: frozenset[int] | None = None

    @property
    def scope(self) -> tuple[str, int]:
        return (self.scope_kind, self.scope_id)


class PageCache:
    """Rendered pages by scope. Invalidation touches only the scopes an event names.

    A request that read MongoDB before an invalidation must not store what it read after it: `put`
    takes the generation observed before the read and refuses a stale one.
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._scopes: dict[tuple[str, int], dict[PageKey, Any]] = {}
        self._generations: dict[tuple[str, int], int] = {}
        self._epoch = 0
        self._size = 0

    def get(self, key: PageKey) -> Any:
        entries = self._scopes.get(key.scope)
        return MISSING if entries is None else entries.get(key, MISSING)

    def generation(self, key: PageKey) -> tuple[int, int]:
        return (self._epoch, self._generations.get(key.scope, 0))

    def put(self, key: PageKey, value: Any, generation: tuple[int, int]) -> bool:
        if generation != self.generation(key):
            return False
        if self.get(key) is MISSING:
            if self._size >= self.max_entries:
                self._evict_oldest()
            self._size += 1
        self._scopes.setdefault(key.scope, {})[key] = value
        return True

    def invalidate(self, scopes: Iterable[tuple[str, int]], names: Collection[str] = ()) -> int:
        """Drop pages of `scopes`: every page when `names` is empty, else those names and the index."""
        wanted = {normalize_name(n) for n in names}
        dropped = 0
        for scope in scopes:
            self._generations[scope] = self._generations.get(scope, 0) + 1
            entries = self._scopes.get(scope)
            if not entries:
                continue
            if not wanted:
                dropped += len(entries)
                del self._scopes[scope]
                continue
            for key in [k for k in entries if k.name is None or k.name in wanted]:
                del entries[key]
                dropped += 1
        self._size -= dropped
        return dropped

    def clear(self) -> int:
        dropped = self._size
        self._epoch += 1
        self._scopes.clear()
        self._size = 0
        return dropped

    def __len__(self) -> int:
        return self._size

    def _evict_oldest(self) -> None:
        # Scopes are kept in insertion order; dropping a whole scope keeps eviction O(1) per page.
        oldest = next(iter(self._scopes), None)
        if oldest is not None:
            self._size -= len(self._scopes.pop(oldest))


class CachedBlobs:
    """Blobs that keep the bytes of recently downloaded objects in memory (least recently used first out).

    An object key names one upload and is never reused for other bytes, so nothing here needs
    invalidating: whether a file may be served is decided before `open`, from MongoDB, on every request.
    A miss streams from the store as before and starts one background read of the whole object, so a
    burst of requests for a new file fetches it once, and memory never holds more than `max_bytes`.
    """

    def __init__(self, inner: Blobs, max_bytes: int = 128 * 2**20, max_object: int = 32 * 2**20) -> None:
        self.inner = inner
        self.max_bytes = max_bytes
        self.max_object = min(max_object, max_bytes)
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._filling: dict[str, asyncio.Task[None]] = {}

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        data = self._entries.get(key)
        if data is not None:
            self._entries.move_to_end(key)
            end = offset + length if length else len(data)
            return _single(memoryview(data)[offset:end])
        if key not in self._filling:
            self._filling[key] = asyncio.create_task(self._fill(key))
        return await self.inner.open(key, offset, length)

    async def presigned_url(self, key: str, filename: str) -> str:
        return await self.inner.presigned_url(key, filename)

    async def gateway_url(self, key: str) -> str:
        return await self.inner.gateway_url(key)

    def __len__(self) -> int:
        return len(self._entries)

    async def _fill(self, key: str) -> None:
        try:
            chunks = await self.inner.open(key, 0, 0)
            if chunks is None:
                return
            parts, size = [], 0
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_object:
                    await chunks.aclose()  # type: ignore[attr-defined]
                    return
                parts.append(chunk)
            self._put(key, b"".join(parts))
        except Exception as exc:  # noqa: BLE001 - a failed fill only means the next request streams again
            log.warning("blob_cache_fill_failed", object_key=key, error=type(exc).__name__)
        finally:
            self._filling.pop(key, None)

    def _put(self, key: str, data: bytes) -> None:
        if key in self._entries:
            return
        while self._entries and self._size + len(data) > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._size -= len(dropped)
        self._entries[key] = data
        self._size += len(data)


async def _single(data: memoryview) -> AsyncIterator[bytes]:
    yield data  # type: ignore[misc]  # aiohttp writes memoryviews without copying them
