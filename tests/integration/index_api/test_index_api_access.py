"""SPEC §3.1 on the read routes: 404 for unknown scopes before credentials, then 403 / 401 / 404."""
from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry_shared.domain.access import Role
from tests.integration.index_api.index_support import Seeder, basic

UNAUTHORIZED = {"message": "401 Unauthorized"}
REALM = 'Basic realm="GitLab Packages Registry"'


@pytest.fixture
async def world(seed: Seeder) -> dict[str, Any]:
    await seed.group("acme")
    public = await seed.project("acme/public")
    private = await seed.project("acme/private", "private")
    disabled = await seed.project("acme/disabled", registry_access="disabled")
    registry_public = await seed.project("acme/open-registry", "private", registry_access="public")
    for project in (public, private, disabled, registry_public):
        await seed.add_file(project, "demo-1.0.tar.gz", b"demo", name="demo", version="1.0")
    await seed.publish_pages()
    outsider, guest, reporter = [await seed.user(n) for n in ("outsider", "guest", "reporter")]
    await seed.member(guest, "project", private, Role.GUEST)
    await seed.member(reporter, "project", private, Role.REPORTER)
    return {"public": public, "private": private, "disabled": disabled, "registry_public": registry_public,
            "outsider": basic("outsider", await seed.token(outsider)),
            "guest": basic("guest", await seed.token(guest)),
            "reporter": basic("reporter", await seed.token(reporter))}


def simple(project: dict[str, Any], tail: str = "") -> str:
    return f"/api/v4/projects/{project['_id']}/packages/pypi/simple{tail}"


@pytest.mark.parametrize("path", [
    "/api/v4/projects/999999/packages/pypi/simple",
    "/api/v4/projects/acme%2Fnope/packages/pypi/simple/demo",
    "/api/v4/projects/999999/packages/pypi/files/" + "0" * 64 + "/demo-1.0.tar.gz",
    "/api/v4/groups/999999/-/packages/pypi/simple",
])
async def test_unknown_scope_is_404_before_credentials(client: TestClient, world, path: str) -> None:
    # A bad job token would be 401 anywhere else: the unknown scope must win.
    response = await client.get(path, headers=basic("gitlab-ci-token", "not-a-job-token"))
    assert response.status == 404
    assert await response.json() == {"message": "404 Not Found"}


async def test_anonymous_on_private_is_401_with_realm(client: TestClient, world) -> None:
    response = await client.get(simple(world["private"]))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert await response.json() == UNAUTHORIZED


async def test_unknown_password_is_anonymous(client: TestClient, world) -> None:
    on_public = await client.get(simple(world["public"]), headers=basic("someone", "no-such-token"))
    assert on_public.status == 200
    on_private = await client.get(simple(world["private"]), headers=basic("someone", "no-such-token"))
    assert on_private.status == 401


async def test_signed_in_non_member_on_private_is_404(client: TestClient, world) -> None:
    response = await client.get(simple(world["private"]), headers=world["outsider"])
    assert response.status == 404
    assert await response.json() == {"message": "404 Not Found"}


async def test_guest_without_setting_is_403_reporter_reads(client: TestClient, world) -> None:
    guest = await client.get(simple(world["private"], "/demo"), headers=world["guest"])
    assert guest.status == 403
    assert await guest.json() == {"message": "403 Forbidden"}
    reporter = await client.get(simple(world["private"], "/demo"), headers=world["reporter"])
    assert reporter.status == 200
    assert "demo-1.0.tar.gz" in await reporter.text()


async def test_guest_reads_when_instance_allows_it(make_client, seed: Seeder, world) -> None:
    await seed.tenancy.set_instance_settings({"allow_guest_to_read_packages": True})
    client = await make_client()
    response = await client.get(simple(world["private"]), headers=world["guest"])
    assert response.status == 200


async def test_disabled_registry_on_public_project_is_403(client: TestClient, world) -> None:
    response = await client.get(simple(world["disabled"]))
    assert response.status == 403
    files = await client.get(f"/api/v4/projects/{world['disabled']['_id']}/packages/pypi/files/"
                             + "0" * 64 + "/demo-1.0.tar.gz")
    assert files.status == 403


async def test_public_registry_on_private_project_is_readable_anonymously(client: TestClient, world) -> None:
    response = await client.get(simple(world["registry_public"], "/demo"))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "max-age=0, must-revalidate"


async def test_bad_job_token_is_401_even_on_public(client: TestClient, world) -> None:
    response = await client.get(simple(world["public"]), headers=basic("gitlab-ci-token", "glcbt-bogus"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == REALM
    again = await client.get(simple(world["public"]), headers=basic("gitlab-ci-token", "glcbt-bogus"))
    assert again.status == 401  # also when the rejection comes from the credential cache


async def test_running_job_token_reads_its_private_project(client: TestClient, seed: Seeder, world) -> None:
    user = await seed.user("ci-user")
    await seed.member(user, "project", world["private"], Role.DEVELOPER)
    _, token = await seed.tenancy.create_job(world["private"]["_id"], user["_id"])
    response = await client.get(simple(world["private"]), headers=basic("gitlab-ci-token", token))
    assert response.status == 200


async def test_deploy_token_of_the_project_reads_it(client: TestClient, seed: Seeder, world) -> None:
    _, token = await seed.tenancy.create_deploy_token("deployer", ["read_package_registry"], None,
                                                      project_id=world["private"]["_id"])
    response = await client.get(simple(world["private"], "/demo"), headers=basic("deployer", token))
    assert response.status == 200
    elsewhere = await client.get(simple(world["disabled"]), headers=basic("deployer", token))
    assert elsewhere.status == 403


async def test_request_log_line_names_the_scope_never_the_token(client: TestClient, world, capsys) -> None:
    response = await client.get(simple(world["private"]), headers=world["reporter"])
    assert response.status == 200
    output = capsys.readouterr().out
    scope = f"project:{world['private']['_id']}"
    assert any(form in output for form in (f"scope={scope}", f'"scope": "{scope}"', f'"scope":"{scope}"'))
    secret = world["reporter"]["Authorization"]
    assert secret.split()[1] not in output
