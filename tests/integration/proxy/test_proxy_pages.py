"""The proxy's pages against a fake upstream: rewriting into the scope, JSON and HTML both ways, the TTL,
ETag revalidation, single flight, stale-if-error and negative caching, with real MongoDB."""
from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from aiohttp.test_utils import TestClient

from proxy.app import PAGES
from tests.integration.proxy.conftest import BASE, eventually, sample
from tests.support.upstream import JSON_TYPE, make_wheel

PROJECT_FILES = f"{BASE}/api/v4/projects/7/packages/pypi/files"
GROUP_FILES = f"{BASE}/api/v4/groups/3/-/packages/pypi/files"


class Clock:
    """Replaces the page service's clock: TTLs pass without waiting."""

    def __init__(self, proxy: TestClient) -> None:
        self.now = 1_000_000.0
        proxy.server.app[PAGES].clock = lambda: self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def get_page(proxy: TestClient, name: str, scope: str = "project:7", accept: str | None = None):
    headers = {"Accept": accept} if accept else {}
    return await proxy.get(f"/pages/{name}", params={"scope": scope}, headers=headers)


async def test_html_upstream_is_rewritten_into_the_scope(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    filename, wheel, metadata = make_wheel("up-demo", "1.0")
    fake.add("up-demo", filename, wheel, requires_python=">=3.8,<4", metadata=metadata)
    sdist = fake.add("up-demo", "up-demo-0.9.tar.gz", b"old sdist", yanked="broken build")
    response = await get_page(proxy, "Up_Demo")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["ETag"].startswith('"') and response.headers["X-Proxy-Cache"] == "miss"
    text = await response.text()
    sha = hashlib.sha256(wheel).hexdigest()
    meta_sha = hashlib.sha256(metadata).hexdigest()
    assert f'href="{PROJECT_FILES}/{sha}/{filename}#sha256={sha}"' in text
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in text
    assert f'data-core-metadata="sha256={meta_sha}"' in text
    assert f'href="{PROJECT_FILES}/{sdist.sha256}/up-demo-0.9.tar.gz#sha256={sdist.sha256}"' in text
    assert 'data-yanked="broken build"' in text
    assert "127.0.0.1" not in text  # no upstream URL survives
    assert fake.page_requests == {"up-demo": 1}
    assert JSON_TYPE in fake.accept_headers[0]  # JSON preferred, HTML accepted


async def test_json_upstream_and_json_answer(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.json_pages = True
    filename, wheel, _ = make_wheel("jsonpkg", "2.0")
    fake.add("jsonpkg", filename, wheel, requires_python=">=3.9")
    response = await get_page(proxy, "jsonpkg", scope="group:3", accept=JSON_TYPE)
    assert response.status == 200
    assert response.headers["Content-Type"] == JSON_TYPE
    doc = json.loads(await response.read())
    assert doc["meta"]["api-version"] == "1.1" and doc["name"] == "jsonpkg" and doc["versions"] == ["2.0"]
    [entry] = doc["files"]
    sha = hashlib.sha256(wheel).hexdigest()
    assert entry["url"] == f"{GROUP_FILES}/{sha}/{filename}"
    assert entry["hashes"] == {"sha256": sha}
    assert entry["requires-python"] == ">=3.9"
    assert entry["size"] == len(wheel) and entry["upload-time"] == "2024-05-06T07:08:09Z"
    assert entry["core-metadata"] is False and entry["yanked"] is False


async def test_html_upstream_json_answer_has_sizes_learned_by_head(proxy: TestClient, upstream, mongo) -> None:
    """SPEC §5: a page declaring 1.1 gives every file's size; an HTML upstream says none, a HEAD does."""
    fake, _ = upstream
    fake.add("plain", "plain-1.0.tar.gz", b"sdist")
    fake.add("plain", "plain-1.1.tar.gz", b"longer sdist")
    doc = json.loads(await (await get_page(proxy, "plain", accept=JSON_TYPE)).read())
    assert doc["meta"]["api-version"] == "1.1"
    assert [(f["filename"], f["size"]) for f in doc["files"]] == [("plain-1.0.tar.gz", 5), ("plain-1.1.tar.gz", 12)]
    assert all("upload-time" not in f for f in doc["files"])  # an HTML upstream does not say; optional
    assert doc["versions"] == ["1.0", "1.1"]
    assert fake.head_requests == {"plain-1.0.tar.gz": 1, "plain-1.1.tar.gz": 1} and not fake.file_requests
    stored = await mongo.db["proxy_pages"].find_one({"_id": "plain"})
    assert stored["sizes"] == [["plain-1.0.tar.gz", 5], ["plain-1.1.tar.gz", 12]]  # cached with the page
    again = await page_read_back_from_mongodb(proxy, "plain")
    assert json.loads(again)["files"] == doc["files"] and sum(fake.head_requests.values()) == 2


async def page_read_back_from_mongodb(proxy: TestClient, name: str) -> bytes:
    """The page from the cache's other layer: this replica's memory dropped, MongoDB's copy read back."""
    proxy.server.app[PAGES]._pages.clear()
    proxy.server.app[PAGES]._rendered.clear()
    response = await get_page(proxy, name, accept=JSON_TYPE)
    assert response.headers["X-Proxy-Cache"] == "hit"
    return await response.read()


@pytest.mark.parametrize("how", ["no Content-Length", "HEAD fails"])
async def test_html_upstream_without_learnable_sizes_declares_1_0(proxy: TestClient, upstream, how: str) -> None:
    """PEP 700 makes `size` mandatory from 1.1 on: a page that cannot give it declares 1.0, keeping the rest."""
    fake, _ = upstream
    fake.head_lengths, fake.head_failing = how != "no Content-Length", how == "HEAD fails"
    fake.add("unsized", "unsized-1.0.tar.gz", b"sdist", requires_python=">=3.9")
    doc = json.loads(await (await get_page(proxy, "unsized", accept=JSON_TYPE)).read())
    assert fake.head_requests == {"unsized-1.0.tar.gz": 1}
    assert doc["meta"]["api-version"] == "1.0"
    [entry] = doc["files"]
    assert "size" not in entry and entry["requires-python"] == ">=3.9" and doc["versions"] == ["1.0"]
    html_page = await (await get_page(proxy, "unsized")).text()
    assert "unsized-1.0.tar.gz#sha256=" in html_page  # HTML has no size to give: unchanged


async def test_a_downloaded_file_gives_its_size_when_head_could_not(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.head_failing = True
    file = fake.add("later", "later-1.0.tar.gz", b"sdist bytes")
    assert json.loads(await (await get_page(proxy, "later", accept=JSON_TYPE)).read())["meta"]["api-version"] == "1.0"
    download = await proxy.get(f"/files/{file.sha256}/later-1.0.tar.gz")
    assert download.status == 200 and await download.read() == b"sdist bytes"

    async def sized() -> bool:
        doc = json.loads(await (await get_page(proxy, "later", accept=JSON_TYPE)).read())
        return doc["meta"]["api-version"] == "1.1" and doc["files"][0].get("size") == 11

    await eventually(sized, "the stored file's size on the page")


async def test_fresh_page_is_served_from_the_cache_for_every_scope(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("cached", "cached-1.0.tar.gz", b"x")
    first = await get_page(proxy, "cached")
    again = await get_page(proxy, "cached")
    group = await get_page(proxy, "cached", scope="group:3")
    assert [r.headers["X-Proxy-Cache"] for r in (first, again, group)] == ["miss", "hit", "hit"]
    assert await first.read() == await again.read()
    assert GROUP_FILES in await group.text()
    assert fake.page_requests["cached"] == 1


async def test_pages_are_shared_through_mongodb(make_proxy, upstream) -> None:
    fake, _ = upstream
    fake.add("shared", "shared-1.0.tar.gz", b"x")
    one, two = await make_proxy(), await make_proxy()
    assert (await get_page(one, "shared")).headers["X-Proxy-Cache"] == "miss"
    second = await get_page(two, "shared")
    assert second.headers["X-Proxy-Cache"] == "hit"  # another replica's fetch
    assert fake.page_requests["shared"] == 1


async def test_expired_page_is_revalidated_with_its_etag(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("reval", "reval-1.0.tar.gz", b"x")
    clock = Clock(proxy)
    first = await get_page(proxy, "reval")
    clock.advance(601)  # the default TTL is 10 minutes
    second = await get_page(proxy, "reval")
    assert second.headers["X-Proxy-Cache"] == "revalidated"
    assert fake.conditional_requests["reval"] == 1
    assert await second.read() == await first.read()
    clock.advance(300)
    assert (await get_page(proxy, "reval")).headers["X-Proxy-Cache"] == "hit"  # fresh again from the 304
    fake.add("reval", "reval-2.0.tar.gz", b"y")  # upstream changes: the next fetch gets the new page
    clock.advance(601)
    third = await get_page(proxy, "reval")
    assert third.headers["X-Proxy-Cache"] == "miss" and "reval-2.0.tar.gz" in await third.text()


async def test_concurrent_requests_fetch_upstream_once(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("busy", "busy-1.0.tar.gz", b"x")
    fake.page_gate = asyncio.Event()
    requests = [asyncio.ensure_future(get_page(proxy, "busy")) for _ in range(20)]
    await eventually(lambda: fake.page_requests["busy"] > 0, "the upstream fetch started")
    fake.page_gate.set()
    responses = await asyncio.gather(*requests)
    assert {r.status for r in responses} == {200}
    assert fake.page_requests["busy"] == 1


async def test_stale_page_is_served_while_upstream_fails(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("stale", "stale-1.0.tar.gz", b"x")
    clock = Clock(proxy)
    body = await (await get_page(proxy, "stale")).read()
    fake.failing = True
    clock.advance(3600)
    response = await get_page(proxy, "stale")
    assert response.status == 200 and response.headers["X-Proxy-Cache"] == "stale"
    assert await response.read() == body
    clock.advance(86400)  # past PROXY_STALE_TTL (24 h)
    gone = await get_page(proxy, "stale")
    assert gone.status == 502
    assert await gone.json() == {"message": "502 Bad Gateway"}


async def test_stale_page_survives_a_restart(make_proxy, upstream) -> None:
    fake, server = upstream
    fake.add("durable", "durable-1.0.tar.gz", b"x")
    first = await make_proxy(proxy_page_ttl=0.0)
    assert (await get_page(first, "durable")).status == 200
    await server.close()  # the upstream is gone altogether
    restarted = await make_proxy(proxy_page_ttl=0.0)
    response = await get_page(restarted, "durable")
    assert response.status == 200 and response.headers["X-Proxy-Cache"] == "stale"


async def test_upstream_404_is_cached(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    clock = Clock(proxy)
    for _ in range(3):
        response = await get_page(proxy, "nowhere")
        assert response.status == 404
        assert await response.json() == {"message": "404 Package Not Found"}
    assert fake.page_requests["nowhere"] == 1
    fake.add("nowhere", "nowhere-1.0.tar.gz", b"x")
    clock.advance(601)
    assert (await get_page(proxy, "nowhere")).status == 200


async def test_no_upstream_and_nothing_cached_is_502(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.failing = True
    errors = await sample(proxy, "registry_proxy_upstream_errors_total", kind="page", reason="status_503")
    response = await get_page(proxy, "anything")
    assert response.status == 502
    assert await sample(proxy, "registry_proxy_upstream_errors_total", kind="page", reason="status_503") == errors + 1


async def test_bad_requests(proxy: TestClient) -> None:
    assert (await proxy.get("/pages/demo")).status == 400  # no scope
    assert (await get_page(proxy, "demo", scope="project:x")).status == 400
    assert (await get_page(proxy, "-bad-")).status == 404
    assert (await get_page(proxy, "demo", accept="image/png")).status == 406


async def test_files_without_sha256_are_not_listed(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("mixed", "mixed-1.0.tar.gz", b"x")
    fake.projects["mixed"][0].advertised_sha256 = "not-a-hash"
    fake.add("mixed", "mixed-2.0.tar.gz", b"y")
    text = await (await get_page(proxy, "mixed")).text()
    assert "mixed-1.0.tar.gz" not in text and "mixed-2.0.tar.gz" in text


async def test_health_readiness_and_metrics(proxy: TestClient, upstream) -> None:
    fake, _ = upstream
    fake.add("metered", "metered-1.0.tar.gz", b"x")
    assert (await proxy.get("/-/health")).status == 200
    ready = await proxy.get("/-/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"mongodb": True, "s3": True, "prepared": True}
    counted = (("registry_proxy_cache_total", {"kind": "page", "result": "miss"}),
               ("registry_proxy_cache_total", {"kind": "page", "result": "hit"}),
               ("registry_proxy_upstream_seconds_count", {"kind": "page"}))
    before = [await sample(proxy, name, **labels) for name, labels in counted]
    await get_page(proxy, "metered")
    await get_page(proxy, "metered")
    after = [await sample(proxy, name, **labels) for name, labels in counted]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]  # one miss (timed), one hit


async def test_not_ready_without_mongo(make_proxy) -> None:
    # Nothing listens on port 9: the ping fails after the client's server-selection timeout.
    proxy = await make_proxy(mongodb_url="mongodb://127.0.0.1:9/none")
    response = await proxy.get("/-/ready")
    assert response.status == 503
    assert (await response.json())["checks"]["mongodb"] is False


async def test_pages_arriving_in_pieces_are_read_whole(proxy: TestClient, upstream) -> None:
    """pypi.org's pages come in several network reads: every file of a long page is listed, JSON and HTML."""
    fake, _ = upstream
    fake.pace = 0.05
    for name in ("slow-json", "slow-html"):
        for minor in range(40):
            fake.add(name, f"{name}-1.{minor}.tar.gz", f"{name} {minor}".encode())
    fake.json_pages = True
    json_page = json.loads(await (await get_page(proxy, "slow-json", accept=JSON_TYPE)).text())
    assert len(json_page["files"]) == 40 and json_page["versions"][-1] == "1.39"
    fake.json_pages = False
    html_page = await (await get_page(proxy, "slow-html")).text()
    assert html_page.count("<a ") == 40 and "slow-html-1.39.tar.gz" in html_page
    assert fake.page_requests == {"slow-json": 1, "slow-html": 1}
