"""E1/E2 (and E3m) of a project: exact HTML, PEP 691 JSON, negotiation, caching headers."""
from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry_shared.domain.simple import FileEntry
from tests.integration.index_api.index_support import BASE, Seeder, basic

JSON = "application/vnd.pypi.simple.v1+json"
METADATA = b"Metadata-Version: 2.1\nName: My.Package\nVersion: 1.0\nRequires-Python: >=3.8,<4\n"


@pytest.fixture
async def world(seed: Seeder) -> dict[str, Any]:
    await seed.group("acme")
    project = await seed.project("acme/api")
    wheel = await seed.add_file(project, "my_package-1.0-py3-none-any.whl", b"W" * 1000, name="My.Package",
                                version="1.0", requires_python=">=3.8,<4", metadata=METADATA)
    sdist = await seed.add_file(project, "my_package-1.0.tar.gz", b"S" * 10, name="My.Package", version="1.0")
    await seed.add_file(project, "zeta-2.0.tar.gz", b"Z", name="zeta", version="2.0")
    await seed.publish_pages()
    return {"project": project, "wheel": wheel, "sdist": sdist}


def files_url(project_id: int, entry: FileEntry) -> str:
    return f"{BASE}/api/v4/projects/{project_id}/packages/pypi/files/{entry.sha256}/{entry.filename}"


async def test_project_index_html_lists_normalised_names_with_external_links(client: TestClient, world) -> None:
    pid = world["project"]["_id"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/pypi/simple")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    simple = f"{BASE}/api/v4/projects/{pid}/packages/pypi/simple"
    assert await response.text() == (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        "    <title>Links for api</title>\n  </head>\n  <body>\n    <h1>Links for api</h1>\n"
        f'    <a href="{simple}/my-package">my-package</a><br>\n'
        f'    <a href="{simple}/zeta">zeta</a><br>\n'
        "  </body>\n</html>\n"
    )


@pytest.mark.parametrize("path", ["acme%2Fapi", "acme%2fAPI", "ACME%2Fapi"])
async def test_project_found_by_url_encoded_path_links_use_numeric_id(client: TestClient, world, path) -> None:
    pid = world["project"]["_id"]
    response = await client.get(f"/api/v4/projects/{path}/packages/pypi/simple/", headers={"Accept": JSON})
    assert response.status == 200
    assert response.headers["Content-Type"] == JSON
    assert json.loads(await response.read()) == {
        "meta": {"api-version": "1.1"}, "projects": [{"name": "my-package"}, {"name": "zeta"}]}
    page = await client.get(f"/api/v4/projects/{path}/packages/pypi/simple/my-package")
    assert f"{BASE}/api/v4/projects/{pid}/packages/pypi/files/" in await page.text()


async def test_package_page_html_exact_shape(client: TestClient, world) -> None:
    pid, wheel, sdist = world["project"]["_id"], world["wheel"], world["sdist"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/pypi/simple/my-package/")
    assert response.status == 200
    meta = f"sha256={wheel.core_metadata_sha256}"
    assert await response.text() == (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.1">\n'
        "    <title>Links for my-package</title>\n  </head>\n  <body>\n    <h1>Links for my-package</h1>\n"
        f'    <a href="{files_url(pid, wheel)}#sha256={wheel.sha256}" data-requires-python="&gt;=3.8,&lt;4"'
        f' data-dist-info-metadata="{meta}" data-core-metadata="{meta}">{wheel.filename}</a><br>\n'
        f'    <a href="{files_url(pid, sdist)}#sha256={sdist.sha256}">{sdist.filename}</a><br>\n'
        "  </body>\n</html>\n"
    )


async def test_package_page_json_carries_pep_691_and_700_fields(client: TestClient, world) -> None:
    pid, wheel, sdist = world["project"]["_id"], world["wheel"], world["sdist"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/pypi/simple/my-package",
                                headers={"Accept": "application/vnd.pypi.simple.latest+json, text/html;q=0.1"})
    assert response.headers["Content-Type"] == JSON
    doc = json.loads(await response.read())
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "my-package"
    assert doc["versions"] == ["1.0"]
    first, second = doc["files"]
    assert first == {
        "filename": wheel.filename, "url": files_url(pid, wheel), "hashes": {"sha256": wheel.sha256},
        "requires-python": ">=3.8,<4", "core-metadata": {"sha256": wheel.core_metadata_sha256},
        "dist-info-metadata": {"sha256": wheel.core_metadata_sha256}, "yanked": False, "size": 1000,
        "upload-time": "2025-01-02T03:04:05Z"}
    assert second["filename"] == sdist.filename and second["core-metadata"] is False


@pytest.mark.parametrize("asked", ["My.Package", "my_package", "MY--package", "my-package"])
async def test_requested_name_is_normalised(client: TestClient, world, asked: str) -> None:
    pid = world["project"]["_id"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/pypi/simple/{asked}")
    assert response.status == 200
    assert "<title>Links for my-package</title>" in await response.text()


async def test_etag_vary_cache_control_and_304(client: TestClient, world) -> None:
    url = f"/api/v4/projects/{world['project']['_id']}/packages/pypi/simple/my-package"
    html = await client.get(url)
    as_json = await client.get(url, headers={"Accept": JSON})
    for response in (html, as_json):
        assert response.headers["Vary"] == "Accept"
        assert response.headers["Cache-Control"] == "max-age=0, must-revalidate"
        assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert html.headers["ETag"] != as_json.headers["ETag"]
    again = await client.get(url, headers={"If-None-Match": html.headers["ETag"]})
    assert again.status == 304
    assert again.headers["ETag"] == html.headers["ETag"] and again.headers["Vary"] == "Accept"
    assert await again.read() == b""
    other = await client.get(url, headers={"If-None-Match": as_json.headers["ETag"]})
    assert other.status == 200


async def test_head_on_a_page_sends_headers_only(client: TestClient, world) -> None:
    url = f"/api/v4/projects/{world['project']['_id']}/packages/pypi/simple"
    get = await client.get(url)
    head = await client.head(url)
    assert head.status == 200
    assert head.headers["ETag"] == get.headers["ETag"]
    assert await head.read() == b""


async def test_private_scope_adds_private_to_cache_control(client: TestClient, seed: Seeder) -> None:
    await seed.group("corp", "private")
    project = await seed.project("corp/secret", "private")
    reader = await seed.user("reader")
    await seed.member(reader, "project", project, 20)
    await seed.add_file(project, "inner-1.0.tar.gz", b"x", name="inner", version="1.0")
    await seed.publish_pages()
    response = await client.get(f"/api/v4/projects/{project['_id']}/packages/pypi/simple/inner",
                                headers=basic("reader", await seed.token(reader)))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "private, max-age=0, must-revalidate"


async def test_unacceptable_accept_is_406(client: TestClient, world) -> None:
    response = await client.get(f"/api/v4/projects/{world['project']['_id']}/packages/pypi/simple",
                                headers={"Accept": "application/xml"})
    assert response.status == 406
    assert await response.json() == {"message": "406 Not Acceptable"}


async def test_empty_project_has_an_empty_index(client: TestClient, seed: Seeder) -> None:
    await seed.group("empty")
    project = await seed.project("empty/nothing")
    response = await client.get(f"/api/v4/projects/{project['_id']}/packages/pypi/simple",
                                headers={"Accept": JSON})
    assert json.loads(await response.read()) == {"meta": {"api-version": "1.1"}, "projects": []}


async def test_core_metadata_served_only_where_stored(client: TestClient, world) -> None:
    pid, wheel, sdist = world["project"]["_id"], world["wheel"], world["sdist"]
    base = f"/api/v4/projects/{pid}/packages/pypi/files"
    response = await client.get(f"{base}/{wheel.sha256}/{wheel.filename}.metadata")
    assert response.status == 200
    assert await response.read() == METADATA
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["ETag"] == f'"{wheel.core_metadata_sha256}"'
    assert response.headers["Cache-Control"] == "max-age=31536000, immutable"
    cached = await client.get(f"{base}/{wheel.sha256}/{wheel.filename}.metadata",
                              headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status == 304
    missing = await client.get(f"{base}/{sdist.sha256}/{sdist.filename}.metadata")
    assert missing.status == 404
    assert await missing.json() == {"message": "404 Package Not Found"}


async def test_unknown_route_is_json_404(client: TestClient, world) -> None:
    response = await client.get("/api/v4/projects/1/packages/pypi/nothing-here")
    assert response.status == 404
    assert await response.json() == {"message": "404 Not Found"}
