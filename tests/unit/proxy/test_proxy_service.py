"""The proxy's use cases (proxy.service, proxy.tee) with fakes of its own ports: no servers, a fake clock."""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import IO

import pytest

from proxy.errors import IntegrityError, UpstreamError, UpstreamUnavailable
from proxy.files import ProxiedFile, file_key
from proxy.pages import Learned, ProxiedPage, Scope
from proxy.ports import PageFetch, UpstreamBody
from proxy.service import FileService, PageService
from proxy.upstream import UpstreamFile
from registry_shared.errors import PackageNotFound

SHA = "ab" * 32
JSON = "application/vnd.pypi.simple.v1+json"


class FakeStore:
    def __init__(self) -> None:
        self.pages: dict[str, ProxiedPage] = {}
        self.files: dict[str, ProxiedFile] = {}
        self.registered: list[str] = []

    async def load_page(self, name: str) -> ProxiedPage | None:
        return self.pages.get(name)

    async def save_page(self, page: ProxiedPage) -> None:
        self.pages[page.name] = page

    async def touch_page(self, name: str, fetched_at: float, etag: str | None) -> None:
        page = self.pages[name]
        self.pages[name] = ProxiedPage(name, page.found, fetched_at, page.files, page.versions, etag)

    async def register_files(self, name: str, files: Sequence[UpstreamFile]) -> None:
        for f in files:
            self.registered.append(f.filename)
            self.files[file_key(f.sha256, f.filename)] = ProxiedFile(name, f)

    async def learned(self, name: str) -> dict[str, Learned]:
        return {}

    async def find_file(self, sha256: str, filename: str) -> ProxiedFile | None:
        return self.files.get(file_key(sha256, filename))

    async def mark_stored(self, file: ProxiedFile, size: int) -> None:
        self.files[file.key] = file.stored(size)

    async def mark_metadata(self, file: ProxiedFile, sha256: str, extracted: bool) -> None:
        pass


class FakeUpstream:
    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.page_calls: list[tuple[str, str | None]] = []
        self.file_calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.sizes: dict[str, int] = {}  # what a HEAD of each URL says (nothing: no Content-Length)
        self.size_calls: list[str] = []
        self.size_fail = False
        self.size_gate: asyncio.Event | None = None
        self.heads_running = self.most_heads_running = 0

    async def fetch_page(self, name: str, etag: str | None) -> PageFetch:
        self.page_calls.append((name, etag))
        if self.gate:
            await self.gate.wait()
        if self.fail:
            raise UpstreamError("status_503")
        body = self.pages.get(name)
        if body is None:
            return PageFetch("not_found", "https://u/simple/x/")
        tag = '"' + hashlib.sha256(body).hexdigest()[:8] + '"'
        if etag == tag:
            return PageFetch("not_modified", f"https://u/simple/{name}/", etag=tag)
        return PageFetch("ok", f"https://u/simple/{name}/", body, "text/html", tag)

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[UpstreamBody]:
        self.file_calls += 1
        if self.fail:
            raise UpstreamError("status_503")
        data = self.files[url]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 4):
                if self.gate:
                    await self.gate.wait()
                yield data[i:i + 4]

        yield UpstreamBody(len(data), chunks())

    async def fetch_bytes(self, url: str, limit: int) -> bytes | None:
        return None

    async def file_size(self, url: str) -> int | None:
        self.size_calls.append(url)
        self.heads_running += 1
        self.most_heads_running = max(self.most_heads_running, self.heads_running)
        try:
            if self.size_gate:
                await self.size_gate.wait()
            if self.fail or self.size_fail:
                raise UpstreamError("status_503")
            return self.sizes.get(url)
        finally:
            self.heads_running -= 1


class FakeBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        if key not in self.objects:
            return None
        data = self.objects[key][offset: offset + length if length else None]

        async def chunks() -> AsyncIterator[bytes]:
            yield data
        return chunks()

    def put_stream_blocking(self, key: str, reader: IO[bytes], part_size: int) -> None:
        data = bytearray()
        while chunk := reader.read(part_size):
            data += chunk
        self.objects[key] = bytes(data)

    async def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    async def read(self, key: str) -> bytes | None:
        return self.objects.get(key)

    async def wheel_metadata(self, key: str, size: int) -> bytes | None:
        return None


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def html(*names: str, sha: str = SHA) -> bytes:
    return "".join(f'<a href="/f/{n}#sha256={sha}">{n}</a>' for n in names).encode()


@pytest.fixture
def parts() -> tuple[FakeStore, FakeUpstream, Clock, PageService]:
    store, upstream, clock = FakeStore(), FakeUpstream(), Clock()
    return store, upstream, clock, PageService(store, upstream, 600, 86400, "https://r", clock=clock)


async def test_ttl_revalidation_and_changes(parts) -> None:
    store, upstream, clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")
    assert (await service.page("demo"))[1] == "miss"
    assert (await service.page("demo"))[1] == "hit"
    clock.now += 600
    page, result = await service.page("demo")
    assert result == "revalidated" and page.fetched_at == clock.now and upstream.page_calls[-1][1] is not None
    upstream.pages["demo"] = html("demo-1.0.tar.gz", "demo-2.0.tar.gz")
    clock.now += 601
    page, result = await service.page("demo")
    assert result == "miss" and len(page.files) == 2
    assert store.registered == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]  # only what changed is re-registered


async def test_single_flight(parts) -> None:
    _store, upstream, _clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")
    upstream.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(service.page("demo")) for _ in range(10)]
    await asyncio.sleep(0)
    upstream.gate.set()
    assert {r for _, r in await asyncio.gather(*waiting)} == {"miss"}
    assert len(upstream.page_calls) == 1


async def test_a_cancelled_request_does_not_cancel_the_shared_fetch(parts) -> None:
    _store, upstream, _clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")
    upstream.gate = asyncio.Event()
    first = asyncio.ensure_future(service.page("demo"))
    second = asyncio.ensure_future(service.page("demo"))
    await asyncio.sleep(0)
    first.cancel()
    upstream.gate.set()
    assert (await second)[1] == "miss"


async def test_stale_if_error_then_502(parts) -> None:
    _store, upstream, clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")
    await service.page("demo")
    upstream.fail = True
    clock.now += 86000
    assert (await service.page("demo"))[1] == "stale"
    clock.now += 1000
    with pytest.raises(UpstreamUnavailable):
        await service.page("demo")


async def test_negative_caching_and_404(parts) -> None:
    _store, upstream, _clock, service = parts
    for _ in range(3):
        with pytest.raises(PackageNotFound):
            await service.render("nowhere", Scope("project", 1), "text/html")
    assert len(upstream.page_calls) == 1


def file_service(store: FakeStore, upstream: FakeUpstream) -> tuple[FileService, FakeBlobs]:
    blobs = FakeBlobs()
    return FileService(store, upstream, blobs, part_size=8), blobs


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def listed_file(parts, data: bytes) -> tuple[FakeUpstream, FileService, FakeBlobs, ProxiedFile]:
    """`demo-1.0.tar.gz` (upstream serving `data`) on a page the proxy served, and a FileService for it."""
    store, upstream, _clock, pages = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz", sha=hashlib.sha256(data).hexdigest())
    upstream.files["https://u/f/demo-1.0.tar.gz"] = data
    await pages.page("demo")
    files, blobs = file_service(store, upstream)
    return upstream, files, blobs, await files.describe(hashlib.sha256(data).hexdigest(), "demo-1.0.tar.gz")


async def test_tee_then_store_then_range(parts) -> None:
    data = b"0123456789abcdefghij"
    upstream, files, blobs, file = await listed_file(parts, data)
    first = await files.download(file, None)
    assert first.result == "miss" and await read_all(first.chunks) == data
    await files.close()
    assert blobs.objects[file.object_key] == data
    stored = await files.describe(file.file.sha256, file.file.filename)
    ranged = await files.download(stored, (5, 9))
    assert ranged.result == "hit" and ranged.byte_range == (5, 9) and await read_all(ranged.chunks) == b"56789"
    assert upstream.file_calls == 1


async def test_mismatch_withholds_the_last_chunk_and_stores_nothing(parts) -> None:
    store, upstream, _clock, pages = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")  # advertises SHA, serves other bytes
    upstream.files["https://u/f/demo-1.0.tar.gz"] = b"0123456789"
    await pages.page("demo")
    files, blobs = file_service(store, upstream)
    download = await files.download(await files.describe(SHA, "demo-1.0.tar.gz"), None)
    received = b""
    with pytest.raises(IntegrityError):
        async for chunk in download.chunks:
            received += chunk
    assert received != b"0123456789" and len(received) < 10
    await files.close()
    assert blobs.objects == {}
    assert (await files.describe(SHA, "demo-1.0.tar.gz")).stored_size is None


async def test_concurrent_first_downloads_share_one_fetch(parts) -> None:
    data = b"x" * 40
    upstream, files, _blobs, file = await listed_file(parts, data)
    upstream.gate = asyncio.Event()

    async def get() -> bytes:
        download = await files.download(file, None)
        try:
            return await read_all(download.chunks)
        finally:
            download.release()

    tasks = [asyncio.ensure_future(get()) for _ in range(6)]
    await until(lambda: upstream.file_calls == 1 and len(files._fetches[file.key]._subscribers) == 6)  # noqa: SLF001
    upstream.gate.set()
    assert await asyncio.gather(*tasks) == [data] * 6
    await files.close()
    assert upstream.file_calls == 1


async def test_a_download_described_before_the_file_was_stored_reads_the_stored_copy(parts) -> None:
    data = b"y" * 30
    upstream, files, _blobs, described = await listed_file(parts, data)  # described: not stored yet
    first = await files.download(described, None)
    assert await read_all(first.chunks) == data
    await files.close()  # the first download is stored and recorded
    late = await files.download(described, None)
    assert late.result == "hit" and await read_all(late.chunks) == data
    assert upstream.file_calls == 1


async def until(check: Callable[[], bool], steps: int = 1000) -> None:
    """Let the loop run until `check` holds (bounded; the fakes never wait on time)."""
    for _ in range(steps):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_unsized_files_are_sized_by_head_and_kept_with_the_page(parts) -> None:
    """SPEC §5: what upstream's page does not say, a HEAD does; learned once, kept across refreshes."""
    store, upstream, clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz", "demo-2.0.tar.gz")
    upstream.sizes["https://u/f/demo-1.0.tar.gz"] = 10  # demo-2.0's HEAD gives no length yet
    page, _ = await service.page("demo")
    assert dict(page.sizes) == {"demo-1.0.tar.gz": 10} and store.pages["demo"].sizes == page.sizes
    rendered, _ = await service.render("demo", Scope("project", 1), JSON)
    assert json.loads(rendered.body)["meta"]["api-version"] == "1.0"

    upstream.size_calls.clear()
    upstream.sizes["https://u/f/demo-2.0.tar.gz"] = 20
    clock.now += 600
    page, result = await service.page("demo")  # a 304: only the unknown size is asked again
    assert result == "revalidated" and upstream.size_calls == ["https://u/f/demo-2.0.tar.gz"]
    assert dict(store.pages["demo"].sizes) == {"demo-1.0.tar.gz": 10, "demo-2.0.tar.gz": 20}
    doc = json.loads((await service.render("demo", Scope("project", 1), JSON))[0].body)
    assert doc["meta"]["api-version"] == "1.1" and [f["size"] for f in doc["files"]] == [10, 20]

    upstream.size_calls.clear()
    upstream.pages["demo"] = html("demo-1.0.tar.gz", "demo-2.0.tar.gz", "demo-3.0.tar.gz")
    clock.now += 601
    page, result = await service.page("demo")  # a new page: sizes of unchanged files carry over
    assert result == "miss" and upstream.size_calls == ["https://u/f/demo-3.0.tar.gz"]
    assert dict(page.sizes) == {"demo-1.0.tar.gz": 10, "demo-2.0.tar.gz": 20}


async def test_size_probes_are_bounded_in_concurrency_and_time(parts) -> None:
    store, upstream, _clock, _ = parts
    service = PageService(store, upstream, 600, 86400, "https://r", clock=Clock(), size_probes=3, size_budget=0.2)
    upstream.pages["many"] = html(*(f"many-1.{i}.tar.gz" for i in range(10)))
    upstream.size_gate = asyncio.Event()  # never set: every HEAD hangs
    page, result = await service.page("many")
    assert result == "miss" and len(page.files) == 10 and page.sizes == {}
    assert upstream.most_heads_running == 3 and len(upstream.size_calls) == 3
    doc = json.loads((await service.render("many", Scope("project", 1), JSON))[0].body)
    assert doc["meta"]["api-version"] == "1.0" and all("size" not in f for f in doc["files"])


async def test_failing_heads_leave_the_page_served_as_1_0(parts) -> None:
    _store, upstream, _clock, service = parts
    upstream.pages["demo"] = html("demo-1.0.tar.gz")
    upstream.sizes["https://u/f/demo-1.0.tar.gz"] = 10
    upstream.size_fail = True  # the page answers, its files' HEADs do not
    doc = json.loads((await service.render("demo", Scope("project", 1), JSON))[0].body)
    assert upstream.size_calls == ["https://u/f/demo-1.0.tar.gz"]
    assert doc["meta"]["api-version"] == "1.0" and "size" not in doc["files"][0]
