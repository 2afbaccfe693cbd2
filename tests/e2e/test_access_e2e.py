"""GitLab's credentials with real clients: deploy, job and read-only tokens, group installs, ~/.netrc, and
revocations holding on every index-api and upload-api replica by the time `registry-admin` returns."""
from __future__ import annotations

import subprocess
import urllib.parse
from pathlib import Path

import pytest
import requests

from .clients import fresh_venv, pip_install, post_upload, twine_upload
from .packages import build_package
from .test_walking_registry import client_env, with_credentials


@pytest.fixture(scope="module")
def corp(registry_stack, tmp_path_factory) -> dict:
    """corp (private) > corp/a > corp/a/b, one project in each subgroup, a package uploaded to each."""
    admin = registry_stack.admin
    admin("user", "create", "--username", "corp-dev")
    admin("group", "create", "--path", "corp", "--visibility", "private")
    admin("group", "create", "--path", "corp/a", "--visibility", "private")
    admin("group", "create", "--path", "corp/a/b", "--visibility", "private")
    one = admin("project", "create", "--path", "corp/a/one", "--visibility", "private")
    two = admin("project", "create", "--path", "corp/a/b/two", "--visibility", "private")
    admin("member", "add", "--user", "corp-dev", "--group", "corp", "--role", "developer")
    token = admin("token", "create", "--user", "corp-dev", "--scopes", "api")["token"]
    work = tmp_path_factory.mktemp("corp")
    env = client_env(work)
    for project, name in ((one, "corp-one"), (two, "corp-two")):
        result = twine_upload(build_package(work, name, "1.0", value=len(name)), env, "--repository-url",
                              f"{registry_stack.base_url}/api/v4/projects/{project['id']}/packages/pypi",
                              "-u", "__token__", "-p", token)
        assert result.returncode == 0, result.stdout + result.stderr
    return {"one": one, "two": two, "token": token}


def test_group_deploy_token_installs_from_nested_subgroups(registry_stack, corp, tmp_path: Path) -> None:
    deploy = registry_stack.admin("deploy-token", "create", "--group", "corp", "--username", "corp-deployer",
                                  "--scopes", "read_package_registry")
    index = f"{registry_stack.base_url}/api/v4/groups/corp/-/packages/pypi/simple"
    python = fresh_venv(tmp_path / "venv")
    env = client_env(tmp_path)
    for name in ("corp-one", "corp-two"):
        result = pip_install(python, with_credentials(index, deploy["token"]).replace("__token__", "corp-deployer"),
                             name, env)
        assert result.returncode == 0, result.stdout + result.stderr
    listing = subprocess.run([str(python), "-c", "import corp_one, corp_two; print(corp_one.VALUE, corp_two.VALUE)"],
                             capture_output=True, text=True)
    assert listing.stdout.split() == ["8", "8"]


def test_twine_with_a_ci_job_token_and_a_project_deploy_token(registry_stack, corp, tmp_path: Path) -> None:
    admin = registry_stack.admin
    job = admin("job", "start", "--project", "corp/a/one", "--user", "corp-dev")
    url = f"{registry_stack.base_url}/api/v4/projects/{corp['one']['id']}/packages/pypi"
    env = client_env(tmp_path) | {"TWINE_USERNAME": "gitlab-ci-token", "TWINE_PASSWORD": job["token"]}
    result = twine_upload(build_package(tmp_path, "corp-ci", "1.0", value=1), env, "--repository-url", url)
    assert result.returncode == 0, result.stdout + result.stderr

    deploy = admin("deploy-token", "create", "--project", "corp/a/one", "--username", "writer",
                   "--scopes", "read_package_registry,write_package_registry")
    env = client_env(tmp_path) | {"TWINE_USERNAME": "writer", "TWINE_PASSWORD": deploy["token"]}
    result = twine_upload(build_package(tmp_path, "corp-deployed", "1.0", value=2), env, "--repository-url", url)
    assert result.returncode == 0, result.stdout + result.stderr

    admin("job", "finish", "--id", str(job["id"]))
    env = client_env(tmp_path) | {"TWINE_USERNAME": "gitlab-ci-token", "TWINE_PASSWORD": job["token"]}
    result = twine_upload(build_package(tmp_path, "corp-late", "1.0", value=3), env, "--repository-url", url)
    assert result.returncode != 0 and "401" in result.stdout + result.stderr


def test_read_only_token_upload_is_403(registry_stack, corp, tmp_path: Path) -> None:
    reader = registry_stack.admin("token", "create", "--user", "corp-dev", "--scopes", "read_api")["token"]
    url = f"{registry_stack.base_url}/api/v4/projects/{corp['one']['id']}/packages/pypi"
    result = twine_upload(build_package(tmp_path, "corp-ro", "1.0", value=4), client_env(tmp_path),
                          "--repository-url", url, "-u", "__token__", "-p", reader)
    assert result.returncode != 0
    assert "403" in result.stdout + result.stderr


def test_pip_with_netrc_and_a_bare_index_url(registry_stack, corp, tmp_path: Path) -> None:
    host = urllib.parse.urlsplit(registry_stack.base_url).hostname
    (tmp_path / ".netrc").write_text(f"machine {host} login __token__ password {corp['token']}\n")
    (tmp_path / ".netrc").chmod(0o600)
    python = fresh_venv(tmp_path / "venv")
    index = f"{registry_stack.base_url}/api/v4/projects/{corp['two']['id']}/packages/pypi/simple"
    result = pip_install(python, index, "corp-two==1.0", client_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def _statuses(registry_stack, path: str, auth: tuple[str, str]) -> list[int]:
    return [requests.get(f"{replica}{path}", auth=auth, timeout=10).status_code
            for replica in registry_stack.index_replica_urls]


@pytest.mark.parametrize("change", ["token revoke", "member remove", "job finish", "deploy-token revoke"])
def test_revocations_hold_on_every_replica_once_the_command_returns(registry_stack, corp, change: str) -> None:
    admin = registry_stack.admin
    path = f"/api/v4/projects/{corp['two']['id']}/packages/pypi/simple"
    suffix = change.replace(" ", "-")
    if change == "member remove":
        admin("user", "create", "--username", f"temp-{suffix}")
        admin("member", "add", "--user", f"temp-{suffix}", "--project", "corp/a/b/two", "--role", "reporter")
        auth = ("x", admin("token", "create", "--user", f"temp-{suffix}", "--scopes", "read_api")["token"])
        undo, gone = ["member", "remove", "--user", f"temp-{suffix}", "--project", "corp/a/b/two"], 404
    elif change == "job finish":
        job = admin("job", "start", "--project", "corp/a/b/two", "--user", "corp-dev")
        auth, undo, gone = ("gitlab-ci-token", job["token"]), ["job", "finish", "--id", str(job["id"])], 401
    elif change == "deploy-token revoke":
        deploy = admin("deploy-token", "create", "--project", "corp/a/b/two", "--username", "d",
                       "--scopes", "read_package_registry")
        auth, undo, gone = ("d", deploy["token"]), ["deploy-token", "revoke", "--id", str(deploy["id"])], 401
    else:
        token = admin("token", "create", "--user", "corp-dev", "--scopes", "read_api")
        auth, undo, gone = ("x", token["token"]), ["token", "revoke", "--id", str(token["id"])], 401
    assert _statuses(registry_stack, path, auth) == [200, 200]  # now cached on both replicas
    admin(*undo)  # returns once every live replica has dropped its caches: no wait, no poll
    assert _statuses(registry_stack, path, auth) == [gone, gone]


def test_a_revoked_token_cannot_upload_once_the_command_returns(registry_stack, corp, tmp_path: Path) -> None:
    """upload-api caches credentials as index-api does; `token revoke` returns only once it has dropped them."""
    admin = registry_stack.admin
    token = admin("token", "create", "--user", "corp-dev", "--scopes", "api")
    url = f"{registry_stack.base_url}/api/v4/projects/{corp['two']['id']}/packages/pypi"
    first, second = (build_package(tmp_path / v, "corp-revoked", v, value=1)[0] for v in ("1.0", "2.0"))
    assert post_upload(url, token["token"], first, name="corp-revoked", version="1.0").status_code == 201
    admin("token", "revoke", "--id", str(token["id"]))
    refused = post_upload(url, token["token"], second, name="corp-revoked", version="2.0")
    assert (refused.status_code, refused.json()) == (401, {"message": "401 Unauthorized"})
