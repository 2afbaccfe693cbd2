"""SPEC §4: index-api serves no upload, so a POST to any of its paths (twine pointed at a simple index, a
group, the Packages API) fails loudly: 405 with Allow where the path is a route for other methods, 404
elsewhere, both in GitLab's error shape; never 2xx, never 5xx, whoever asks."""
from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.index_api.index_support import Seeder, basic

SHA = "a" * 64
READ_ONLY = "GET,HEAD"
ROUTES = [  # path (p: project id, g: group id), status of a POST, Allow of a 405
    ("/api/v4/projects/{p}/packages/pypi/simple", 405, READ_ONLY),
    ("/api/v4/projects/{p}/packages/pypi/simple/", 405, READ_ONLY),
    ("/api/v4/projects/acme%2Fapp/packages/pypi/simple/", 405, READ_ONLY),
    ("/api/v4/projects/{p}/packages/pypi/simple/demo", 405, READ_ONLY),
    ("/api/v4/projects/{p}/packages/pypi/simple/demo/", 405, READ_ONLY),
    (f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/demo-1.0.tar.gz", 405, READ_ONLY),
    (f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/demo-1.0-py3-none-any.whl.metadata", 405, READ_ONLY),
    ("/api/v4/groups/{g}/-/packages/pypi/simple", 405, READ_ONLY),
    ("/api/v4/groups/{g}/-/packages/pypi/simple/demo/", 405, READ_ONLY),
    (f"/api/v4/groups/{{g}}/-/packages/pypi/files/{SHA}/demo-1.0.tar.gz", 405, READ_ONLY),
    ("/api/v4/groups/{g}/-/packages/pypi", 404, None),  # there is no group-level upload
    # The upload path is upload-api's (the gateway sends it there); here it reads as E11's `{package_id}`.
    ("/api/v4/projects/{p}/packages/pypi", 405, "DELETE,GET,HEAD"),
    ("/api/v4/projects/{p}/packages", 405, READ_ONLY),
    ("/api/v4/groups/{g}/packages", 405, READ_ONLY),
    ("/api/v4/projects/{p}/packages/1", 405, "DELETE,GET,HEAD"),
    ("/api/v4/projects/{p}/packages/1/package_files", 405, READ_ONLY),
    ("/api/v4/projects/{p}/packages/1/package_files/2", 405, "DELETE"),
    ("/api/v4/nothing/here", 404, None),
]


@pytest.fixture
async def world(seed: Seeder) -> dict[str, Any]:
    group = await seed.group("acme", "private")
    project = await seed.project("acme/app", "private")
    owner = await seed.user("owner")
    await seed.member(owner, "project", project, 50)
    return {"p": project["_id"], "g": group["_id"], "auth": basic("owner", await seed.token(owner, ("api",)))}


@pytest.mark.parametrize("who", ["owner", "anonymous"])
@pytest.mark.parametrize(("path", "status", "allow"), ROUTES, ids=[r[0] for r in ROUTES])
async def test_post_is_404_or_405(client: TestClient, world: dict[str, Any], path: str, status: int,
                                  allow: str | None, who: str) -> None:
    form = aiohttp.FormData({"name": "demo", "version": "1.0"})
    form.add_field("content", b"sdist", filename="demo-1.0.tar.gz")
    response = await client.post(path.format(p=world["p"], g=world["g"]), data=form,
                                 headers=world["auth"] if who == "owner" else {})
    reason = "Method Not Allowed" if status == 405 else "Not Found"
    assert (response.status, response.reason, await response.json()) == (status, reason,
                                                                         {"message": f"{status} {reason}"})
    assert response.headers.get("Allow") == allow
