"""The in-process caches and what each event drops (index_api.cache, index_api.events)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from index_api.access import AccessCaches
from index_api.cache import MISSING, CachedBlobs, PageCache, PageKey, TtlCache
from index_api.events import Invalidator
from registry_shared.events import AccessChanged, IndexChanged, Scope, TokenRevoked

HTML = "text/html"


def key(kind: str = "project", scope_id: int = 1, name: str | None = "a", readable=None) -> PageKey:
    return PageKey(kind, scope_id, name, HTML, readable)


def filled(*keys: PageKey) -> PageCache:
    cache = PageCache()
    for k in keys:
        assert cache.put(k, f"page {k}", cache.generation(k))
    return cache


def test_ttl_cache_expires_and_clears() -> None:
    now = [100.0]
    cache: TtlCache = TtlCache(5, clock=lambda: now[0])
    cache.put("k", None)  # None is a value, not a miss
    assert cache.get("k") is None
    now[0] = 105.0
    assert cache.get("k") is MISSING
    cache.put("k", 1)
    assert cache.clear() == 1 and cache.get("k") is MISSING


def test_ttl_cache_is_bounded() -> None:
    cache: TtlCache = TtlCache(60, max_entries=3)
    for i in range(10):
        cache.put(i, i)
    assert len(cache) <= 3 and cache.get(9) == 9


def test_ttl_zero_disables_caching() -> None:
    cache: TtlCache = TtlCache(0)
    cache.put("k", 1)
    assert cache.get("k") is MISSING


def test_invalidating_names_drops_them_and_the_index_only() -> None:
    a, b, index = key(name="a"), key(name="b"), key(name=None)
    other_scope = key(scope_id=2, name="a")
    group_view = key(kind="group", scope_id=1, name="a", readable=frozenset({1}))
    cache = filled(a, b, index, other_scope, group_view)
    assert cache.invalidate([("project", 1)], ["A"]) == 2  # names are normalised
    assert cache.get(a) is MISSING and cache.get(index) is MISSING
    assert cache.get(b) != MISSING and cache.get(other_scope) != MISSING and cache.get(group_view) != MISSING
    assert len(cache) == 3


def test_invalidating_without_names_drops_the_whole_scope() -> None:
    cache = filled(key(name="a"), key(name=None), key(kind="group", name="a", readable=frozenset({3})),
                   key(kind="group", name="a"))
    assert cache.invalidate([("group", 1)]) == 2
    assert len(cache) == 2


def test_a_read_that_raced_an_invalidation_is_not_stored() -> None:
    cache = PageCache()
    k = key()
    before = cache.generation(k)  # a request starts reading MongoDB...
    cache.invalidate([("project", 1)], ["a"])  # ...the event arrives meanwhile
    assert cache.put(k, "stale page", before) is False
    assert cache.get(k) is MISSING
    assert cache.put(k, "fresh page", cache.generation(k)) is True


def test_clear_refuses_reads_started_before_it() -> None:
    cache = PageCache()
    before = cache.generation(key())
    cache.clear()
    assert cache.put(key(), "stale", before) is False


def test_eviction_keeps_the_size_bounded() -> None:
    cache = PageCache(max_entries=4)
    for scope_id in range(10):
        k = key(scope_id=scope_id)
        cache.put(k, "page", cache.generation(k))
    assert len(cache) <= 4
    assert cache.get(key(scope_id=9)) == "page"


def test_events_drop_what_they_name() -> None:
    pages = filled(key(name="a"), key(scope_id=2, name="a"))
    caches = AccessCaches(ttl=60)
    caches.credentials.put("hash", "principal")
    caches.readable.put(("p", 1), "set")
    invalidator = Invalidator(pages, caches)

    invalidator.handle(IndexChanged(scopes=[Scope(kind="project", id=1)], names=["a"]))
    assert pages.get(key(name="a")) is MISSING and pages.get(key(scope_id=2, name="a")) == "page " + str(
        key(scope_id=2, name="a"))
    assert caches.credentials.get("hash") == "principal"  # pages only

    invalidator.handle(IndexChanged(scopes=[Scope(kind="group", id=1)], names=[]))
    assert caches.readable.get(("p", 1)) is MISSING  # a group changed: readable sets are recomputed

    invalidator.handle(TokenRevoked(token_kind="personal", token_id=4))
    assert caches.credentials.get("hash") is MISSING
    caches.facts.put("f", 1)
    invalidator.handle(AccessChanged(project_ids=[1]))
    assert caches.facts.get("f") is MISSING


def test_reconnect_forgets_everything() -> None:
    pages = filled(key())
    caches = AccessCaches(ttl=60)
    caches.scopes.put("s", 1)
    Invalidator(pages, caches).reconnected()
    assert len(pages) == 0 and len(caches.scopes) == 0


class CountingBlobs:
    """A store of objects that counts reads and sends each in 3-byte chunks."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, int, int]] = []

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        self.reads.append((key, offset, length))
        data = self.objects.get(key)
        if data is None:
            return None
        data = data[offset:offset + length if length else None]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 3):
                await asyncio.sleep(0)
                yield data[i:i + 3]
        return chunks()

    async def presigned_url(self, key: str, filename: str) -> str:
        return f"https://s3.example/{key}"


async def read_all(blobs: CachedBlobs, key: str, offset: int = 0, length: int = 0) -> bytes | None:
    chunks = await blobs.open(key, offset, length)
    return None if chunks is None else b"".join([bytes(c) async for c in chunks])


async def settle(blobs: CachedBlobs) -> None:
    await asyncio.gather(*list(blobs._filling.values()))


async def test_blob_cache_reads_an_object_once_then_serves_it_and_its_ranges_from_memory() -> None:
    store = CountingBlobs({"a": b"0123456789"})
    blobs = CachedBlobs(store, max_bytes=100)
    first, second = await asyncio.gather(read_all(blobs, "a", 2, 3), read_all(blobs, "a"))
    assert (first, second) == (b"234", b"0123456789")
    await settle(blobs)
    fills = [r for r in store.reads if r == ("a", 0, 0)]
    assert len(fills) == 2  # the second request streamed too, but only one background fill ran
    reads = len(store.reads)
    assert await read_all(blobs, "a", 7, 0) == b"789" and await read_all(blobs, "a", 0, 4) == b"0123"
    assert await read_all(blobs, "a") == b"0123456789" and len(store.reads) == reads


async def test_blob_cache_stays_within_its_bounds() -> None:
    store = CountingBlobs({"a": b"a" * 40, "b": b"b" * 40, "c": b"c" * 40, "big": b"x" * 60})
    blobs = CachedBlobs(store, max_bytes=100, max_object=50)
    for key in ("a", "b", "big", "c"):
        await read_all(blobs, key)
        await settle(blobs)
    assert set(blobs._entries) == {"b", "c"}  # `big` exceeds max_object; `a` was least recently used
    assert await read_all(blobs, "missing") is None
    await settle(blobs)
    assert "missing" not in blobs._entries and not blobs._filling
