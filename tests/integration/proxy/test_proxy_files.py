"""The proxy's files against a fake upstream and the session's S3: the first download tees upstream bytes to
the client and S3, later ones come from S3 only, a hash mismatch keeps nothing, concurrent first downloads
fetch once, and core metadata is served (and advertised) only where it can be."""
from __future__ import annotations

import asyncio
import hashlib

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from proxy.keys import FILES
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.web.app import IN_FLIGHT
from tests.integration.proxy.conftest import eventually, sample
from tests.support.servers import unique_suffix
from tests.support.upstream import JSON_TYPE, FakeUpstream, make_wheel

CACHE, LATENCY, ERRORS = ("registry_proxy_cache_total", "registry_proxy_upstream_seconds_count",
                          "registry_proxy_upstream_errors_total")


async def listed(proxy: TestClient, name: str) -> None:
    """Serve the page once: a file is only known to the proxy through a page it served."""
    response = await proxy.get(f"/pages/{name}", params={"scope": "project:1"})
    assert response.status == 200, await response.text()


def add_wheel(fake: FakeUpstream, name: str, **fields) -> tuple[str, bytes, bytes]:
    filename, wheel, metadata = make_wheel(name, "1.0", body=f"VALUE = '{unique_suffix()}'\n")
    fake.add(name, filename, wheel, **fields)
    return filename, wheel, metadata


async def test_first_download_tees_then_s3_serves(proxy: TestClient, upstream, store: ObjectStore) -> None:
    fake, _ = upstream
    filename, wheel, _ = add_wheel(fake, "teed")
    sha = hashlib.sha256(wheel).hexdigest()
    await listed(proxy, "teed")
    before = {"miss": await sample(proxy, CACHE, kind="file", result="miss"),
              "hit": await sample(proxy, CACHE, kind="file", result="hit"),
              "latency": await sample(proxy, LATENCY, kind="file")}
    first = await proxy.get(f"/files/{sha}/{filename}")
    assert first.status == 200 and first.headers["X-Proxy-Cache"] == "miss"
    assert await first.read() == wheel
    # The client is answered first; the S3 upload completes right after.
    async def stored() -> bool:
        return await store.size(f"proxy/{sha}/{filename}") == len(wheel)

    await eventually(stored, "the file stored in S3")

    fake.failing = True  # later downloads never touch upstream
    for _ in range(2):
        again = await proxy.get(f"/files/{sha}/{filename}")
        assert again.status == 200 and again.headers["X-Proxy-Cache"] == "hit"
        assert again.headers["Content-Length"] == str(len(wheel)) and again.headers["ETag"] == f'"{sha}"'
        assert await again.read() == wheel
    ranged = await proxy.get(f"/files/{sha}/{filename}", headers={"Range": "bytes=10-19"})
    assert ranged.status == 206 and await ranged.read() == wheel[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(wheel)}"
    assert fake.file_requests[filename] == 1
    assert await sample(proxy, CACHE, kind="file", result="miss") - before["miss"] == 1
    assert await sample(proxy, CACHE, kind="file", result="hit") - before["hit"] == 3
    assert await sample(proxy, LATENCY, kind="file") - before["latency"] == 1


async def test_lookup_names_the_page_and_the_project(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, wheel, _ = add_wheel(fake, "looked-up")
    sha = hashlib.sha256(wheel).hexdigest()
    assert (await proxy.get(f"/lookup/{sha}/{filename}")).status == 404  # no page served yet
    await listed(proxy, "looked-up")
    doc = await (await proxy.get(f"/lookup/{sha}/{filename}")).json()
    assert doc == {"name": "looked-up", "names": ["looked-up"], "filename": filename, "sha256": sha, "size": None,
                   "core_metadata_sha256": None, "stored": False,
                   "upload_time": None, "version": "1.0"}  # an HTML upstream says no upload time
    head = await proxy.head(f"/files/{sha}/{filename}")
    assert head.status == 200 and fake.file_requests[filename] == 0  # HEAD never downloads


async def test_lookup_gives_the_upstreams_upload_time_never_the_fetch_time(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.json_pages = True
    try:
        filename, wheel, _ = add_wheel(fake, "dated", upload_time="2020-01-02T03:04:05Z")
        await listed(proxy, "dated")
    finally:
        fake.json_pages = False
    doc = await (await proxy.get(f"/lookup/{hashlib.sha256(wheel).hexdigest()}/{filename}")).json()
    assert (doc["upload_time"], doc["version"]) == ("2020-01-02T03:04:05Z", "1.0")  # SPEC §9: the upstream's


async def test_hash_mismatch_is_refused_and_nothing_is_kept(proxy: TestClient, upstream, store: ObjectStore) -> None:
    fake, _ = upstream
    filename, wheel, _ = make_wheel("tampered", "1.0")
    advertised = fake.add("tampered", filename, wheel, tamper=True).advertised_sha256
    await listed(proxy, "tampered")
    mismatches = await sample(proxy, ERRORS, kind="file", reason="sha256_mismatch")
    for attempt in (1, 2):
        with pytest.raises(aiohttp.ClientPayloadError):
            response = await proxy.get(f"/files/{advertised}/{filename}")
            await response.read()  # the body is cut short: the client never has the whole file
        assert await store.size(f"proxy/{advertised}/{filename}") is None
        assert fake.file_requests[filename] == attempt  # not cached: the next download asks upstream again
    assert await sample(proxy, ERRORS, kind="file", reason="sha256_mismatch") - mismatches == 2


async def test_size_mismatch_is_refused(proxy: TestClient, upstream, store: ObjectStore) -> None:
    fake, _ = upstream
    fake.json_pages = True
    filename, wheel, _ = add_wheel(fake, "resized", advertised_size=10)  # upstream's headers say otherwise
    await proxy.get("/pages/resized", params={"scope": "project:1"}, headers={"Accept": JSON_TYPE})
    sha = hashlib.sha256(wheel).hexdigest()
    response = await proxy.get(f"/files/{sha}/{filename}")
    assert response.status == 502
    assert await store.size(f"proxy/{sha}/{filename}") is None


async def test_concurrent_first_downloads_fetch_once(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, wheel, _ = add_wheel(fake, "crowded")
    sha = hashlib.sha256(wheel).hexdigest()
    await listed(proxy, "crowded")
    fake.file_head_gate = asyncio.Event()  # upstream answers only when released
    fake.file_gate = asyncio.Event()  # then sends half the file, and waits again
    app = proxy.server.app

    async def download() -> tuple[str, bytes]:
        response = await proxy.get(f"/files/{sha}/{filename}")
        assert response.status == 200
        return response.headers["X-Proxy-Cache"], await response.read()

    def fetch():  # the replica's one running upstream download of this file
        return app[FILES]._fetches.get(f"{sha}/{filename}")  # noqa: SLF001

    early = [asyncio.ensure_future(download()) for _ in range(5)]  # share the upstream stream
    await eventually(lambda: fetch() is not None and len(fetch()._subscribers) == 5,  # noqa: SLF001
                     "five clients waiting for one upstream download")
    fake.file_head_gate.set()
    await eventually(lambda: fetch()._streaming, "bytes flowing from upstream")  # noqa: SLF001
    late = [asyncio.ensure_future(download()) for _ in range(5)]  # join once bytes flow: served from S3
    await eventually(lambda: app[IN_FLIGHT].count == 10, "ten downloads in flight")
    fake.file_gate.set()
    assert await asyncio.gather(*early) == [("miss", wheel)] * 5
    assert await asyncio.gather(*late) == [("hit", wheel)] * 5  # waited for the stored copy
    assert fake.file_requests[filename] == 1


async def test_cached_wheel_metadata_is_extracted_and_advertised(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, wheel, metadata = add_wheel(fake, "meta-less")
    sha = hashlib.sha256(wheel).hexdigest()
    meta_sha = hashlib.sha256(metadata).hexdigest()
    await listed(proxy, "meta-less")
    page = await (await proxy.get("/pages/meta-less", params={"scope": "project:1"})).text()
    assert "data-core-metadata" not in page  # not servable yet: not advertised
    assert (await proxy.get(f"/files/{sha}/{filename}.metadata")).status == 404
    assert await (await proxy.get(f"/files/{sha}/{filename}")).read() == wheel

    async def advertised() -> bool:
        text = await (await proxy.get("/pages/meta-less", params={"scope": "project:1"})).text()
        return f'data-core-metadata="sha256={meta_sha}"' in text

    await eventually(advertised, "the extracted metadata advertised")
    response = await proxy.get(f"/files/{sha}/{filename}.metadata")
    assert response.status == 200 and await response.read() == metadata
    assert response.headers["ETag"] == f'"{meta_sha}"'
    assert (await (await proxy.get(f"/lookup/{sha}/{filename}")).json())["size"] == len(wheel)


async def listed_with_metadata(proxy: TestClient, fake: FakeUpstream, name: str) -> tuple[str, str, bytes]:
    """A wheel whose page advertises its core metadata, listed: (filename, sha256, metadata)."""
    filename, wheel, metadata = add_wheel(fake, name, metadata=b"")
    fake.projects[name][0].metadata = metadata
    await listed(proxy, name)
    return filename, hashlib.sha256(wheel).hexdigest(), metadata


async def test_upstream_metadata_is_verified_and_kept(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, sha, metadata = await listed_with_metadata(proxy, fake, "meta-full")
    for _ in range(2):
        response = await proxy.get(f"/files/{sha}/{filename}.metadata")
        assert response.status == 200 and await response.read() == metadata
    assert fake.file_requests[filename + ".metadata"] == 1


async def test_upstream_metadata_arriving_in_pieces_is_read_whole(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, sha, metadata = await listed_with_metadata(proxy, fake, "meta-slow")
    fake.pace = 0.05
    response = await proxy.get(f"/files/{sha}/{filename}.metadata")
    assert response.status == 200 and await response.read() == metadata


async def test_tampered_upstream_metadata_is_refused(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, sha, metadata = await listed_with_metadata(proxy, fake, "meta-bad")
    fake.projects["meta-bad"][0].metadata = metadata + b"Summary: changed\n"
    assert (await proxy.get(f"/files/{sha}/{filename}.metadata")).status == 502


async def test_unknown_file_is_404(proxy: TestClient) -> None:
    assert (await proxy.get(f"/files/{'a' * 64}/nothing-1.0.tar.gz")).status == 404
    assert (await proxy.get("/files/not-a-sha/nothing-1.0.tar.gz")).status == 404


async def test_upstream_down_on_first_download_is_502(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, wheel, _ = add_wheel(fake, "down")
    await listed(proxy, "down")
    fake.failing = True
    response = await proxy.get(f"/files/{hashlib.sha256(wheel).hexdigest()}/{filename}")
    assert response.status == 502
