"""Use cases of the proxy: upstream pages through a shared cache, and files through S3. Depends only on the
ports (`ports.py`); `app.py` wires the adapters in.

Pages live in MongoDB (`proxy_pages`), so every replica shares them and a stale copy outlives restarts; each
replica also keeps the pages it served in memory while they are fresh, and fetches a name at most once at
a time (single flight).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from registry_shared.errors import PackageNotFound
from registry_shared.logging import get_logger

from .errors import IntegrityError, UpstreamError, UpstreamUnavailable
from .files import ProxiedFile
from .metrics import CACHE, UPSTREAM_ERRORS
from .pages import ProxiedPage, RenderedPage, Scope, render
from .ports import Blobs, ProxyStore, Upstream
from .tee import FileFetch
from .upstream import UpstreamFile, UpstreamPageError, parse_page

log = get_logger()
K = TypeVar("K")
V = TypeVar("V")
MAX_METADATA_SIZE = 5 * 1024 * 1024
# Learning file sizes by HEAD (an upstream that lists none, such as pypiserver) delays a page's first fetch:
# a few requests at a time, and the page is served when the budget is spent (as 1.0 if sizes are missing).
SIZE_PROBES = 8
SIZE_BUDGET = 5.0


class PageService:
    def __init__(self, store: ProxyStore, upstream: Upstream, page_ttl: float, stale_ttl: float, base_url: str,
                 clock: Callable[[], float] = time.time, max_pages: int = 2_000, size_probes: int = SIZE_PROBES,
                 size_budget: float = SIZE_BUDGET) -> None:
        self.store = store
        self.upstream = upstream
        self.page_ttl = page_ttl
        self.stale_ttl = stale_ttl
        self.base_url = base_url
        self.clock = clock
        self.max_pages = max_pages
        self.size_probes = size_probes
        self.size_budget = size_budget
        self._pages: OrderedDict[str, ProxiedPage] = OrderedDict()
        self._rendered: OrderedDict[tuple[object, ...], RenderedPage] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[tuple[ProxiedPage, str]]] = {}

    async def render(self, name: str, scope: Scope, content_type: str) -> tuple[RenderedPage, str]:
        """The page of `name` with file URLs in `scope`, and how the cache answered; 404 if upstream has none."""
        page, result = await self.page(name)
        CACHE.labels("page", result).inc()
        if not page.found:
            raise PackageNotFound()
        learned = await self.store.learned(name)
        key = (name, page.fetched_at, page.etag, len(page.files), len(page.sizes), tuple(sorted(learned.items())),
               scope, content_type)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = render(page, learned, scope.files_base(self.base_url), content_type)
            self._remember(self._rendered, key, rendered, self.max_pages)
        return rendered, result

    async def page(self, name: str) -> tuple[ProxiedPage, str]:
        cached = self._pages.get(name)
        if cached is not None and self._fresh(cached):
            return cached, _hit(cached)
        stored = await self.store.load_page(name)
        if stored is not None and self._fresh(stored):
            self._remember(self._pages, name, stored, self.max_pages)
            return stored, _hit(stored)
        flight = self._inflight.get(name)
        if flight is None:
            flight = asyncio.ensure_future(self._refresh(name, stored))
            self._inflight[name] = flight
            flight.add_done_callback(lambda _f: self._inflight.pop(name, None))
        # Shielded: a client that goes away must not cancel the fetch other requests wait for.
        return await asyncio.shield(flight)

    async def _refresh(self, name: str, previous: ProxiedPage | None) -> tuple[ProxiedPage, str]:
        now = self.clock()
        try:
            fetched = await self.upstream.fetch_page(name, previous.etag if previous and previous.found else None)
            if fetched.status == "not_modified" and previous is not None:
                page, result = replace(previous, fetched_at=now, etag=fetched.etag or previous.etag), "revalidated"
                page = await self._learn_sizes(page)
                if page.sizes != previous.sizes:
                    await self.store.save_page(page)
                else:
                    await self.store.touch_page(name, now, page.etag)
            elif fetched.status == "not_found":
                page, result = ProxiedPage.missing(name, now), "negative"
                await self.store.save_page(page)
            else:
                parsed = parse_page(fetched.body, fetched.content_type, fetched.url, name)
                if parsed.skipped:
                    log.info("upstream_files_skipped", name=name, skipped=parsed.skipped)
                page, result = ProxiedPage.from_upstream(parsed, now, fetched.etag, previous), "miss"
                page = await self._learn_sizes(page)
                # Files first: a URL is only handed out once the file behind it can be found.
                await self.store.register_files(name, _changed(page, previous))
                await self.store.save_page(page)
        except (UpstreamError, UpstreamPageError) as exc:
            if isinstance(exc, UpstreamPageError):
                UPSTREAM_ERRORS.labels("page", "invalid_page").inc()
            if previous is not None and now - previous.fetched_at <= self.stale_ttl:
                log.warning("upstream_page_stale", name=name, error=str(exc), age=round(now - previous.fetched_at))
                self._remember(self._pages, name, previous, self.max_pages)
                return previous, "stale"
            log.warning("upstream_page_failed", name=name, error=str(exc))
            raise UpstreamUnavailable() from exc
        self._remember(self._pages, name, page, self.max_pages)
        return page, result

    async def _learn_sizes(self, page: ProxiedPage) -> ProxiedPage:
        """The page with the sizes of its unsized files learned by HEAD requests (SPEC §5: a page declaring
        api-version 1.1 gives every file's size). Bounded in concurrency and time; a file that stays unknown
        is asked again at the next refresh, and until then the JSON page declares 1.0."""
        if all(f.size is not None or f.filename in page.sizes for f in page.files):
            return page  # the usual case (pypi.org's JSON gives sizes): no round trip to the store
        unsized = page.unsized(await self.store.learned(page.name))
        if not unsized:
            return page
        sizes = dict(page.sizes)
        limit = asyncio.Semaphore(self.size_probes)

        async def probe(url: str, filename: str) -> None:
            async with limit:
                try:
                    size = await self.upstream.file_size(url)
                except UpstreamError:
                    return
            if size is not None:
                sizes[filename] = size

        try:
            async with asyncio.timeout(self.size_budget):
                await asyncio.gather(*(probe(f.url, f.filename) for f in unsized))
        except TimeoutError:
            pass
        learned = len(sizes) - len(page.sizes)
        log.info("upstream_sizes_learned", name=page.name, learned=learned, unknown=len(unsized) - learned)
        return replace(page, sizes=sizes)

    def _fresh(self, page: ProxiedPage) -> bool:
        return 0 <= self.clock() - page.fetched_at < self.page_ttl

    @staticmethod
    def _remember(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > limit:
            cache.popitem(last=False)


def _hit(page: ProxiedPage) -> str:
    return "hit" if page.found else "negative"


def _changed(page: ProxiedPage, previous: ProxiedPage | None) -> list[UpstreamFile]:
    """Files whose registration (URL, advertised hashes, ...) differs from the previous fetch."""
    before = {f.filename: f for f in previous.files} if previous is not None else {}
    return [f for f in page.files if before.get(f.filename) != f]


@dataclass
class Download:
    chunks: AsyncIterator[bytes]  # raises IntegrityError / UpstreamError when the transfer must be refused
    size: int | None  # of the whole file, when known
    byte_range: tuple[int, int] | None  # (first, last) when a Range is served
    result: str  # "hit" (from S3) | "miss" (from upstream)
    release: Callable[[], None] = lambda: None  # called once the response is over, however it ended


class FileService:
    def __init__(self, store: ProxyStore, upstream: Upstream, blobs: Blobs, part_size: int) -> None:
        self.store = store
        self.upstream = upstream
        self.blobs = blobs
        self.part_size = part_size
        self._fetches: dict[str, FileFetch] = {}
        self._background: set[asyncio.Future[None]] = set()

    async def describe(self, sha256: str, filename: str) -> ProxiedFile:
        """A file of a page the proxy has served, else 404."""
        file = await self.store.find_file(sha256.lower(), filename)
        if file is None:
            raise PackageNotFound()
        return file

    async def download(self, file: ProxiedFile, byte_range: tuple[int, int | None] | None) -> Download:
        """From S3 when stored (honouring a Range), else from upstream through the tee (whole file)."""
        for _attempt in range(3):
            if file.stored_size is not None:
                served = await self._from_store(file, byte_range)
                if served is not None:
                    return served
                log.warning("proxy_object_missing", file=file.key)  # fetch it again
            fetch = self._fetches.get(file.key)
            if fetch is None and file.stored_size is None:
                # `file` may have been read just before another download of it finished and was recorded.
                latest = await self.store.find_file(file.file.sha256, file.file.filename)
                if latest is not None and latest.stored_size is not None:
                    file = latest
                    continue
                fetch = self._fetches.get(file.key)
            if fetch is None:
                fetch = self._start(file)
            subscriber = fetch.subscribe()
            if subscriber is not None:
                try:
                    length = await asyncio.shield(fetch.started)
                except BaseException as exc:
                    subscriber.detach()
                    if isinstance(exc, UpstreamError):
                        raise UpstreamUnavailable() from exc
                    raise
                CACHE.labels("file", "miss").inc()
                return Download(subscriber.chunks(), length, None, "miss", subscriber.detach)
            try:  # bytes already flow to other clients: wait for the stored copy
                file = await asyncio.shield(fetch.done)
            except UpstreamError as exc:
                raise UpstreamUnavailable() from exc
        raise UpstreamUnavailable()

    def _start(self, file: ProxiedFile) -> FileFetch:
        fetch = FileFetch(file, self.upstream, self.blobs.put_stream_blocking, self.part_size, self._stored)
        self._fetches[file.key] = fetch
        task = asyncio.ensure_future(fetch.run())
        self._keep(task)
        task.add_done_callback(lambda _t: self._fetches.pop(file.key, None))
        return fetch

    async def _from_store(self, file: ProxiedFile, byte_range: tuple[int, int | None] | None) -> Download | None:
        size = file.stored_size
        assert size is not None
        first, last = 0, size - 1
        if byte_range is not None and size > 0 and byte_range[0] < size:
            first = byte_range[0]
            last = min(byte_range[1] if byte_range[1] is not None else size - 1, size - 1)
        else:
            byte_range = None
        chunks = await self.blobs.open(file.object_key, first, last - first + 1 if size else 0)
        if chunks is None:
            return None
        CACHE.labels("file", "hit").inc()
        return Download(chunks, size, (first, last) if byte_range is not None else None, "hit")

    async def _stored(self, file: ProxiedFile, size: int) -> None:
        await self.store.mark_stored(file, size)
        if file.file.filename.endswith(".whl") and file.metadata_sha256 is None:
            self._keep(asyncio.ensure_future(self._extract_metadata(file.stored(size))))

    async def _extract_metadata(self, file: ProxiedFile) -> None:
        """Make a stored wheel's core metadata servable (and so advertised) where upstream offers none."""
        assert file.stored_size is not None
        try:
            data = await self.blobs.wheel_metadata(file.object_key, file.stored_size)
            if data is None:
                return
            digest = hashlib.sha256(data).hexdigest()
            await self.blobs.put_bytes(file.metadata_key, data)
            await self.store.mark_metadata(file, digest, extracted=True)
            log.info("proxy_metadata_extracted", file=file.key)
        except Exception as exc:  # noqa: BLE001 - the wheel stays servable; its metadata is just not offered
            log.warning("proxy_metadata_extract_failed", file=file.key, error=type(exc).__name__)

    async def core_metadata(self, file: ProxiedFile) -> tuple[bytes, str]:
        """The file's core metadata and its sha256: from S3, or from upstream (verified, then stored)."""
        digest = file.metadata_sha256
        if digest is None:
            raise PackageNotFound()
        if file.metadata_stored:
            data = await self.blobs.read(file.metadata_key)
            if data is not None:
                CACHE.labels("metadata", "hit").inc()
                return data, digest
        if file.file.metadata_sha256 is None:  # extracted once, and the object is gone
            raise PackageNotFound()
        try:
            data = await self.upstream.fetch_bytes(file.file.url + ".metadata", MAX_METADATA_SIZE)
        except UpstreamError as exc:
            raise UpstreamUnavailable() from exc
        if data is None:
            raise PackageNotFound()
        if hashlib.sha256(data).hexdigest() != digest:
            UPSTREAM_ERRORS.labels("metadata", "sha256_mismatch").inc()
            log.warning("upstream_metadata_rejected", file=file.key)
            raise UpstreamUnavailable()
        CACHE.labels("metadata", "miss").inc()
        await self.blobs.put_bytes(file.metadata_key, data)
        await self.store.mark_metadata(file, digest, extracted=False)
        return data, digest

    def _keep(self, task: asyncio.Future[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Let running downloads finish storing (bounded by the caller's shutdown timeout)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


__all__ = ["Download", "FileService", "IntegrityError", "PageService"]
