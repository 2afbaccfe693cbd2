"""E2/E8 and E3/E9 through the pull-through cache (PROXY_MODE=cache): index-api in front of the real proxy
app in front of a fake upstream. index-api forwards only after the permission checks, only names absent
from the scope, only with forwarding on; files of proxied pages are served only where their name is absent."""
from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from proxy.app import create_app as create_proxy_app
from proxy.settings import ProxySettings
from registry_shared.domain.access import Role
from tests.integration.index_api.index_support import BASE, Seeder, basic
from tests.support.servers import settings_from_env
from tests.support.upstream import JSON_TYPE, FakeUpstream, make_wheel, serving


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeUpstream, TestServer]]:
    upstream = FakeUpstream()
    async with serving(upstream) as server:
        yield upstream, server


@pytest.fixture
async def proxy_server(index_env: dict[str, str], fake, store) -> AsyncIterator[TestServer]:
    settings = settings_from_env(ProxySettings, index_env, registry_external_url=BASE,
                                 proxy_upstream_url=str(fake[1].make_url("/simple/")), proxy_upstream_timeout=5.0)
    server = TestServer(create_proxy_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def client(make_client, proxy_server: TestServer) -> TestClient:
    return await make_client(proxy_mode="cache", proxy_url=str(proxy_server.make_url("")).rstrip("/"))


@pytest.fixture
async def world(seed: Seeder, fake) -> dict[str, Any]:
    upstream, _ = fake
    filename, wheel, metadata = make_wheel("up-only", "2.0")
    upstream.add("up-only", filename, wheel, metadata=metadata)
    upstream.add("shadowed", "shadowed-9.0.tar.gz", b"upstream's shadowed")
    group = await seed.group("acme")
    api = await seed.project("acme/api")
    other = await seed.project("acme/other")
    await seed.add_file(api, "shadowed-1.0.tar.gz", b"internal", name="shadowed", version="1.0")
    await seed.publish_pages()
    sha = hashlib.sha256(wheel).hexdigest()
    return {"group": group, "api": api, "other": other, "filename": filename, "wheel": wheel, "sha": sha,
            "metadata": metadata, "upstream": upstream}


def root(kind: str, scope_id: int) -> str:
    return f"/api/v4/projects/{scope_id}/packages/pypi" if kind == "project" else \
        f"/api/v4/groups/{scope_id}/-/packages/pypi"


@pytest.mark.parametrize("kind", ["project", "group"])
async def test_upstream_only_name_is_served_in_the_scope(client: TestClient, world, kind: str) -> None:
    scope_id = world["api"]["_id"] if kind == "project" else world["group"]["_id"]
    response = await client.get(f"{root(kind, scope_id)}/simple/Up.Only/")
    assert response.status == 200, await response.text()
    text = await response.text()
    file_url = f"{BASE}{root(kind, scope_id)}/files/{world['sha']}/{world['filename']}"
    assert f'href="{file_url}#sha256={world["sha"]}"' in text
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Cache-Control"] == "max-age=0, must-revalidate"
    again = await client.get(f"{root(kind, scope_id)}/simple/up-only",
                             headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    as_json = await client.get(f"{root(kind, scope_id)}/simple/up-only/", headers={"Accept": JSON_TYPE})
    assert as_json.headers["Content-Type"] == JSON_TYPE
    assert (await as_json.json())["files"][0]["url"] == file_url

    download = await client.get(f"{root(kind, scope_id)}/files/{world['sha']}/{world['filename']}")
    assert download.status == 200 and await download.read() == world["wheel"]
    assert download.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert download.headers["ETag"] == f'"{world["sha"]}"'
    metadata = await client.get(f"{root(kind, scope_id)}/files/{world['sha']}/{world['filename']}.metadata")
    assert metadata.status == 200 and await metadata.read() == world["metadata"]


async def test_second_download_needs_no_upstream(client: TestClient, world) -> None:
    base = root("project", world["api"]["_id"])
    await client.get(f"{base}/simple/up-only/")
    url = f"{base}/files/{world['sha']}/{world['filename']}"
    assert await (await client.get(url)).read() == world["wheel"]
    world["upstream"].failing = True
    for _ in range(3):
        response = await client.get(url)
        assert response.status == 200 and await response.read() == world["wheel"]
    ranged = await client.get(url, headers={"Range": "bytes=0-9"})
    assert ranged.status in (200, 206)  # 206 once the proxy has stored it (it may still be uploading)
    assert world["upstream"].file_requests[world["filename"]] == 1


async def test_local_name_never_reaches_upstream(client: TestClient, world) -> None:
    for kind, scope_id in (("project", world["api"]["_id"]), ("group", world["group"]["_id"])):
        response = await client.get(f"{root(kind, scope_id)}/simple/shadowed/")
        assert response.status == 200
        text = await response.text()
        assert "shadowed-1.0.tar.gz" in text and "shadowed-9.0.tar.gz" not in text
    assert world["upstream"].page_requests["shadowed"] == 0


async def test_upstream_file_of_a_local_name_is_not_served(client: TestClient, world) -> None:
    # acme/other has no `shadowed`, so its page there is the upstream one; acme/api and the group have it.
    other = root("project", world["other"]["_id"])
    page = await (await client.get(f"{other}/simple/shadowed/")).text()
    assert "shadowed-9.0.tar.gz" in page
    sha = hashlib.sha256(b"upstream's shadowed").hexdigest()
    assert (await client.get(f"{other}/files/{sha}/shadowed-9.0.tar.gz")).status == 200
    for scope in (root("project", world["api"]["_id"]), root("group", world["group"]["_id"])):
        refused = await client.get(f"{scope}/files/{sha}/shadowed-9.0.tar.gz")
        assert refused.status == 404
        assert await refused.json() == {"message": "404 Package Not Found"}


async def test_forwarding_off_is_404_and_upstream_is_not_asked(client: TestClient, seed: Seeder, world) -> None:
    quiet = await seed.project("acme/quiet", forwarding=False)
    response = await client.get(f"{root('project', quiet['_id'])}/simple/up-only/")
    assert response.status == 404
    assert await response.json() == {"message": "404 Package Not Found"}
    assert world["upstream"].page_requests["up-only"] == 0
    await client.get(f"{root('project', world['api']['_id'])}/simple/up-only/")  # known to the proxy now
    file = await client.get(f"{root('project', quiet['_id'])}/files/{world['sha']}/{world['filename']}")
    assert file.status == 404


async def test_permission_checks_come_first(client: TestClient, seed: Seeder, world) -> None:
    secret = await seed.project("acme/secret", "private")
    response = await client.get(f"{root('project', secret['_id'])}/simple/up-only/")
    assert response.status == 401
    user = await seed.user("reader")
    await seed.member(user, "project", secret, Role.REPORTER)
    token = await seed.token(user)
    allowed = await client.get(f"{root('project', secret['_id'])}/simple/up-only/", headers=basic("u", token))
    assert allowed.status == 200
    assert allowed.headers["Cache-Control"] == "private, max-age=0, must-revalidate"
    assert world["upstream"].page_requests["up-only"] == 1


async def test_upstream_404_is_package_not_found(client: TestClient, world) -> None:
    response = await client.get(f"{root('project', world['api']['_id'])}/simple/nowhere-at-all/")
    assert response.status == 404
    assert await response.json() == {"message": "404 Package Not Found"}


async def test_tampered_upstream_file_is_cut_short(client: TestClient, world) -> None:
    filename, wheel, _ = make_wheel("evil", "1.0")
    advertised = world["upstream"].add("evil", filename, wheel, tamper=True).advertised_sha256
    base = root("project", world["api"]["_id"])
    await client.get(f"{base}/simple/evil/")
    with pytest.raises(aiohttp.ClientPayloadError):
        response = await client.get(f"{base}/files/{advertised}/{filename}")
        await response.read()


async def test_proxy_down_is_502(make_client, world) -> None:
    client = await make_client(proxy_mode="cache", proxy_url="http://127.0.0.1:9")
    response = await client.get(f"{root('project', world['api']['_id'])}/simple/up-only/")
    assert response.status == 502
    assert await response.json() == {"message": "502 Bad Gateway"}


async def test_redirect_mode_is_gitlabs_302(make_client, world) -> None:
    client = await make_client(proxy_mode="redirect")
    response = await client.get(f"{root('project', world['api']['_id'])}/simple/Up.Only", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "https://pypi.org/simple/up-only/"
    assert world["upstream"].page_requests["up-only"] == 0
