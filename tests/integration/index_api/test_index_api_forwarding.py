"""Names missing from a scope (E2/E8): 404 when forwarding is off, GitLab's 302 to pypi.org when on."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.index_api.index_support import Seeder

PYPI = "https://pypi.org/simple/"


async def get_missing(client: TestClient, kind: str, scope_id: int, name: str = "Some.Upstream_Pkg"):
    root = f"/api/v4/projects/{scope_id}/packages/pypi" if kind == "project" else \
        f"/api/v4/groups/{scope_id}/-/packages/pypi"
    return await client.get(f"{root}/simple/{name}", allow_redirects=False)


async def test_instance_default_forwards_with_a_redirect(client: TestClient, seed: Seeder) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    response = await get_missing(client, "project", project["_id"])
    assert response.status == 302
    assert response.headers["Location"] == f"{PYPI}some-upstream-pkg/"


async def test_instance_forwarding_off_is_404(client: TestClient, seed: Seeder) -> None:
    await seed.tenancy.set_instance_settings({"forwarding": False})
    await seed.group("acme")
    project = await seed.project("acme/api")
    response = await get_missing(client, "project", project["_id"])
    assert response.status == 404
    assert await response.json() == {"message": "404 Package Not Found"}


@pytest.mark.parametrize(("top", "sub", "project_value", "expected"), [
    ({"forwarding": False}, {}, None, 404),  # nearest explicit group setting
    ({"forwarding": False}, {}, True, 302),  # the project's own setting wins
    ({"forwarding": False, "forwarding_locked": True}, {"forwarding": True}, True, 404),  # lock forces
    ({"forwarding": True, "forwarding_locked": True}, {"forwarding": False, "forwarding_locked": True}, False, 302),
    ({}, {"forwarding": False}, None, 404),
])
async def test_cascade(client: TestClient, seed: Seeder, top, sub, project_value, expected) -> None:
    await seed.group("acme", **top)
    await seed.group("acme/sub", **sub)
    project = await seed.project("acme/sub/api", forwarding=project_value)
    response = await get_missing(client, "project", project["_id"])
    assert response.status == expected


async def test_group_scope_uses_its_own_setting(client: TestClient, seed: Seeder) -> None:
    await seed.group("acme")
    off = await seed.group("acme/quiet", forwarding=False)
    on = await seed.group("acme/loud")
    assert (await get_missing(client, "group", off["_id"])).status == 404
    assert (await get_missing(client, "group", on["_id"])).status == 302


async def test_existing_name_is_never_forwarded(client: TestClient, seed: Seeder) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    await seed.add_file(project, "requests-0.0.1.tar.gz", b"internal", name="requests", version="0.0.1")
    await seed.publish_pages()
    response = await get_missing(client, "project", project["_id"], "Requests")
    assert response.status == 200
    assert "requests-0.0.1.tar.gz" in await response.text()


async def test_invalid_name_is_404_not_forwarded(client: TestClient, seed: Seeder) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    response = await get_missing(client, "project", project["_id"], "-bad-")
    assert response.status == 404
    assert await response.json() == {"message": "404 Package Not Found"}
