"""E3 (project file download): streaming from S3, Range, HEAD, conditional requests, redirect mode."""
from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.index_api.index_support import Seeder

CONTENT = bytes(range(256)) * 1200  # 307200 bytes: more than one S3 download chunk


@pytest.fixture
async def wheel(seed: Seeder) -> dict[str, Any]:
    await seed.group("acme")
    project = await seed.project("acme/api")
    entry = await seed.add_file(project, "demo-1.0-py3-none-any.whl", CONTENT, name="demo", version="1.0")
    await seed.publish_pages()
    return {"url": f"/api/v4/projects/{project['_id']}/packages/pypi/files/{entry.sha256}/{entry.filename}",
            "entry": entry, "project": project}


async def test_full_download_with_immutable_headers(client: TestClient, wheel) -> None:
    response = await client.get(wheel["url"])
    assert response.status == 200
    body = await response.read()
    assert hashlib.sha256(body).hexdigest() == wheel["entry"].sha256
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["ETag"] == f'"{wheel["entry"].sha256}"'
    assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert response.headers["Content-Disposition"] == 'attachment; filename="demo-1.0-py3-none-any.whl"'
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=300000-", 300000, len(CONTENT) - 1),
    ("bytes=-10", len(CONTENT) - 10, len(CONTENT) - 1),
    ("bytes=307000-999999999", 307000, len(CONTENT) - 1),
])
async def test_single_range_is_206(client: TestClient, wheel, header: str, start: int, end: int) -> None:
    response = await client.get(wheel["url"], headers={"Range": header})
    assert response.status == 206
    assert await response.read() == CONTENT[start:end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response.headers["Content-Length"] == str(end - start + 1)


async def test_unsatisfiable_range_is_416(client: TestClient, wheel) -> None:
    response = await client.get(wheel["url"], headers={"Range": f"bytes={len(CONTENT)}-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert await response.json() == {"message": "416 Range Not Satisfiable"}


async def test_if_range_with_other_validator_sends_whole_file(client: TestClient, wheel) -> None:
    response = await client.get(wheel["url"], headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert response.status == 200
    assert len(await response.read()) == len(CONTENT)


async def test_head_sends_headers_only(client: TestClient, wheel) -> None:
    response = await client.head(wheel["url"])
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["ETag"] == f'"{wheel["entry"].sha256}"'
    assert await response.read() == b""


async def test_if_none_match_is_304(client: TestClient, wheel) -> None:
    response = await client.get(wheel["url"], headers={"If-None-Match": f'"{wheel["entry"].sha256}"'})
    assert response.status == 304
    assert await response.read() == b""


@pytest.mark.parametrize("mutate", [
    lambda url: url.replace("demo-1.0", "demo-2.0"),  # unknown filename
    lambda url: url.replace("demo-1.0", "Demo-1.0"),  # filenames match exactly, not case-folded
    lambda url: url.rsplit("/", 2)[0] + "/" + "0" * 64 + "/" + url.rsplit("/", 1)[1],  # wrong sha256
], ids=["filename", "filename-case", "sha256"])
async def test_unknown_file_is_package_not_found(client: TestClient, wheel, mutate) -> None:
    response = await client.get(mutate(wheel["url"]))
    assert response.status == 404
    assert await response.json() == {"message": "404 Package Not Found"}


async def test_file_of_another_project_is_not_served(client: TestClient, seed: Seeder, wheel) -> None:
    other = await seed.project("acme/other")
    url = wheel["url"].replace(f"/projects/{wheel['project']['_id']}/", f"/projects/{other['_id']}/")
    response = await client.get(url)
    assert response.status == 404


async def test_redirect_mode_answers_presigned_url(make_client, wheel) -> None:
    client = await make_client(index_file_redirect=True)
    response = await client.get(wheel["url"], allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert "X-Amz-Signature=" in location
    assert urlparse(location).path.endswith("/demo-1.0-py3-none-any.whl")
    async with aiohttp.ClientSession() as session, session.get(location) as s3:
        assert s3.status == 200
        assert await s3.read() == CONTENT


# -- send-file: a gateway that says it can (X-Sendfile-Type) gets the object's URL, not its bytes -------------
SEND_FILE = {"X-Sendfile-Type": "X-Accel-Redirect"}


async def test_a_gateway_gets_the_object_to_send_instead_of_the_bytes(make_client, wheel) -> None:
    client = await make_client(index_send_file_min_size=len(CONTENT))
    response = await client.get(wheel["url"], headers=SEND_FILE)
    assert response.status == 200 and await response.read() == b""
    assert response.headers["X-Accel-Redirect"] == "/-/send-object"
    assert "X-Object-Range" not in response.headers
    # The file's own headers travel with it: the gateway keeps them and drops S3's.
    assert response.headers["ETag"] == f'"{wheel["entry"].sha256}"'
    assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert response.headers["Content-Disposition"] == 'attachment; filename="demo-1.0-py3-none-any.whl"'
    assert response.headers["Content-Type"] == "application/octet-stream"
    # The URL works against S3 as given, with the Host it was signed for (no credentials of the caller).
    url = response.headers["X-Object-Url"]
    assert "X-Amz-Signature=" in url and url.split("?")[0].endswith("/demo-1.0-py3-none-any.whl")
    host = response.headers["X-Object-Host"]
    async with aiohttp.ClientSession() as session, session.get(f"http://{host}{url}") as s3:
        assert s3.status == 200 and await s3.read() == CONTENT


async def test_a_range_is_checked_here_and_asked_of_s3(make_client, wheel) -> None:
    client = await make_client(index_send_file_min_size=1)
    response = await client.get(wheel["url"], headers={**SEND_FILE, "Range": "bytes=-10"})
    assert response.headers["X-Object-Range"] == f"bytes={len(CONTENT) - 10}-{len(CONTENT) - 1}"
    unsatisfiable = await client.get(wheel["url"], headers={**SEND_FILE, "Range": f"bytes={len(CONTENT)}-"})
    assert unsatisfiable.status == 416 and "X-Accel-Redirect" not in unsatisfiable.headers
    stale = await client.get(wheel["url"], headers={**SEND_FILE, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert "X-Accel-Redirect" in stale.headers and "X-Object-Range" not in stale.headers


@pytest.mark.parametrize(("headers", "min_size"), [
    ({}, 1),  # reached directly, not through a gateway that can send
    ({"X-Sendfile-Type": "X-Sendfile"}, 1),  # a gateway of another kind
    (SEND_FILE, len(CONTENT) + 1),  # below INDEX_SEND_FILE_MIN_SIZE
], ids=["no-gateway", "other-type", "small-file"])
async def test_otherwise_index_api_streams_the_bytes(make_client, wheel, headers, min_size: int) -> None:
    client = await make_client(index_send_file_min_size=min_size)
    response = await client.get(wheel["url"], headers=headers)
    assert response.status == 200 and "X-Accel-Redirect" not in response.headers
    assert await response.read() == CONTENT


@pytest.mark.parametrize(("method", "headers", "status"), [
    ("HEAD", {}, 200),
    ("GET", {"If-None-Match": "*"}, 304),
])
async def test_head_and_304_never_reach_the_gateway(make_client, wheel, method: str, headers, status: int) -> None:
    client = await make_client(index_send_file_min_size=1)
    response = await client.request(method, wheel["url"], headers={**SEND_FILE, **headers})
    assert response.status == status and "X-Accel-Redirect" not in response.headers


async def test_redirect_mode_wins_over_the_gateway(make_client, wheel) -> None:
    client = await make_client(index_file_redirect=True, index_send_file_min_size=1)
    response = await client.get(wheel["url"], headers=SEND_FILE, allow_redirects=False)
    assert response.status == 302 and "X-Accel-Redirect" not in response.headers
