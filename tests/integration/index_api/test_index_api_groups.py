"""E7/E8/E9 (group scope): only readable projects, lowest project id wins, per-project file access."""
from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry_shared.domain.access import Role
from tests.integration.index_api.index_support import BASE, Seeder, basic

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture
async def world(seed: Seeder) -> dict[str, Any]:
    group = await seed.group("acme")
    await seed.group("acme/platform")
    a = await seed.project("acme/a")
    b = await seed.project("acme/platform/b", "private")
    a_shared = await seed.add_file(a, "shared-1.0.tar.gz", b"from a", name="shared", version="1.0")
    b_shared = await seed.add_file(b, "shared-1.0.tar.gz", b"from b", name="shared", version="1.0")
    b_newer = await seed.add_file(b, "shared-1.1.tar.gz", b"newer in b", name="shared", version="1.1")
    await seed.add_file(b, "onlyb-1.0.tar.gz", b"b only", name="onlyb", version="1.0")
    await seed.publish_pages()
    reporter = await seed.user("reporter")
    await seed.member(reporter, "project", b, Role.REPORTER)
    assert a["_id"] < b["_id"]
    return {"group": group, "a": a, "b": b, "a_shared": a_shared, "b_shared": b_shared, "b_newer": b_newer,
            "reporter": basic("reporter", await seed.token(reporter))}


def group_url(world: dict[str, Any], tail: str) -> str:
    return f"/api/v4/groups/{world['group']['_id']}/-/packages/pypi{tail}"


async def test_anonymous_sees_only_public_projects(client: TestClient, world) -> None:
    index = await client.get(group_url(world, "/simple"), headers=JSON)
    assert json.loads(await index.read())["projects"] == [{"name": "shared"}]
    page = await client.get(group_url(world, "/simple/shared"), headers=JSON)
    doc = json.loads(await page.read())
    assert [f["hashes"]["sha256"] for f in doc["files"]] == [world["a_shared"].sha256]
    assert doc["versions"] == ["1.0"]
    assert page.headers["Cache-Control"] == "max-age=0, must-revalidate"


async def test_member_sees_every_readable_project_lowest_id_wins(client: TestClient, world) -> None:
    headers = {**JSON, **world["reporter"]}
    index = await client.get(group_url(world, "/simple/"), headers=headers)
    assert json.loads(await index.read())["projects"] == [{"name": "onlyb"}, {"name": "shared"}]
    page = await client.get(group_url(world, "/simple/shared/"), headers=headers)
    doc = json.loads(await page.read())
    files = {f["filename"]: f for f in doc["files"]}
    assert files["shared-1.0.tar.gz"]["hashes"]["sha256"] == world["a_shared"].sha256  # project a wins
    assert files["shared-1.1.tar.gz"]["hashes"]["sha256"] == world["b_newer"].sha256
    assert files["shared-1.1.tar.gz"]["url"].startswith(f"{BASE}/api/v4/groups/{world['group']['_id']}/-/packages/")
    assert doc["versions"] == ["1.0", "1.1"]
    assert page.headers["Cache-Control"] == "private, max-age=0, must-revalidate"


async def test_group_html_links_point_into_the_group(client: TestClient, world) -> None:
    page = await client.get("/api/v4/groups/acme/-/packages/pypi/simple/shared")
    entry = world["a_shared"]
    link = f"{BASE}/api/v4/groups/{world['group']['_id']}/-/packages/pypi/files/{entry.sha256}/{entry.filename}"
    assert f'href="{link}#sha256={entry.sha256}"' in await page.text()


async def test_name_only_in_unreadable_project_is_404_not_forwarded(client: TestClient, world) -> None:
    hidden = await client.get(group_url(world, "/simple/onlyb"), allow_redirects=False)
    assert hidden.status == 404
    assert await hidden.json() == {"message": "404 Package Not Found"}
    visible = await client.get(group_url(world, "/simple/onlyb"), headers=world["reporter"])
    assert visible.status == 200


async def test_group_download_respects_the_files_project(client: TestClient, world) -> None:
    newer = world["b_newer"]
    url = group_url(world, f"/files/{newer.sha256}/{newer.filename}")
    anonymous = await client.get(url)
    assert anonymous.status == 404
    assert await anonymous.json() == {"message": "404 Package Not Found"}
    reporter = await client.get(url, headers=world["reporter"])
    assert reporter.status == 200
    assert await reporter.read() == b"newer in b"
    assert reporter.headers["Cache-Control"] == "private, max-age=31536000, immutable"


async def test_group_download_of_shared_filename(client: TestClient, world) -> None:
    a_file, b_file = world["a_shared"], world["b_shared"]
    a = await client.get(group_url(world, f"/files/{a_file.sha256}/{a_file.filename}"))
    assert await a.read() == b"from a"
    # b's bytes under the same name are reachable by their own sha256 for a reader of b only.
    b_anonymous = await client.get(group_url(world, f"/files/{b_file.sha256}/{b_file.filename}"))
    assert b_anonymous.status == 404
    b = await client.get(group_url(world, f"/files/{b_file.sha256}/{b_file.filename}"), headers=world["reporter"])
    assert await b.read() == b"from b"


async def test_subgroup_by_encoded_path(client: TestClient, world) -> None:
    response = await client.get("/api/v4/groups/acme%2Fplatform/-/packages/pypi/simple", headers=world["reporter"])
    assert response.status == 200
    assert "onlyb" in await response.text()


async def test_private_group_anonymous_is_401(client: TestClient, seed: Seeder) -> None:
    group = await seed.group("hidden", "private")
    response = await client.get(f"/api/v4/groups/{group['_id']}/-/packages/pypi/simple")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'
