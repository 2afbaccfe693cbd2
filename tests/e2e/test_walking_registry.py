"""The core loop with real clients: twine upload -> pip install, through the gateway and all services."""
from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import pytest
import requests
from pymongo import MongoClient

from .clients import fresh_venv, pip_install, post_upload, twine_upload
from .packages import build_package


@pytest.fixture(scope="module")
def tenant(registry_stack) -> dict:
    """A private group and project, a developer with an `api` token."""
    admin = registry_stack.admin
    user = admin("user", "create", "--username", "walker")
    admin("group", "create", "--path", "walkers", "--visibility", "private")
    project = admin("project", "create", "--path", "walkers/demo", "--visibility", "private")
    admin("member", "add", "--user", "walker", "--project", "walkers/demo", "--role", "developer")
    token = admin("token", "create", "--user", "walker", "--scopes", "api")["token"]
    base = registry_stack.base_url
    return {
        "user": user, "project": project, "token": token,
        "upload_url": f"{base}/api/v4/projects/{project['id']}/packages/pypi",
        "simple_url": f"{base}/api/v4/projects/{project['id']}/packages/pypi/simple",
    }


@pytest.fixture(scope="module")
def demo_dists(tmp_path_factory) -> list[Path]:
    return build_package(tmp_path_factory.mktemp("demo"), "walk-demo", "1.0.0", value=42)


def client_env(home: Path) -> dict[str, str]:
    """A clean environment for pip and twine: no global pip config, no stored credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_", "UV_"))}
    env.update(HOME=str(home), PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def with_credentials(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"__token__:{token}@{parts.netloc}"))


def test_twine_upload_then_pip_install(registry_stack, tenant, demo_dists, tmp_path: Path) -> None:
    env = client_env(tmp_path)
    result = twine_upload(demo_dists, env, "--repository-url", tenant["upload_url"], "-u", "__token__",
                          "-p", tenant["token"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "walk_demo-1.0.0-py3-none-any.whl" in result.stdout and "walk_demo-1.0.0.tar.gz" in result.stdout

    python = fresh_venv(tmp_path / "venv")
    installed = pip_install(python, with_credentials(tenant["simple_url"], tenant["token"]), "walk-demo==1.0.0", env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    imported = __import__("subprocess").run([str(python), "-c", "import walk_demo; print(walk_demo.VALUE)"],
                                            capture_output=True, text=True)
    assert imported.stdout.strip() == "42"


def test_upload_through_pypirc_with_encoded_path(registry_stack, tenant, tmp_path: Path) -> None:
    dists = build_package(tmp_path, "walk-pypirc", "0.2.0", value=7)
    encoded = urllib.parse.quote(tenant["project"]["path"], safe="")
    (tmp_path / ".pypirc").write_text(
        "[distutils]\nindex-servers =\n    gitlab\n\n[gitlab]\n"
        f"repository = {registry_stack.base_url}/api/v4/projects/{encoded}/packages/pypi\n"
        f"username = __token__\npassword = {tenant['token']}\n"
    )
    env = client_env(tmp_path)
    result = twine_upload(dists, env, "--repository", "gitlab")
    assert result.returncode == 0, result.stdout + result.stderr
    page = requests.get(f"{tenant['simple_url']}/walk-pypirc/", auth=("__token__", tenant["token"]), timeout=30)
    assert page.status_code == 200
    assert "walk_pypirc-0.2.0-py3-none-any.whl" in page.text and "walk_pypirc-0.2.0.tar.gz" in page.text


def test_identical_reupload_succeeds_and_other_bytes_are_refused(registry_stack, tenant, demo_dists,
                                                                 tmp_path: Path) -> None:
    env = client_env(tmp_path)
    first = twine_upload(demo_dists, env, "--repository-url", tenant["upload_url"], "-u", "x", "-p", tenant["token"])
    assert first.returncode == 0, first.stdout + first.stderr
    again = twine_upload(demo_dists, env, "--repository-url", tenant["upload_url"], "-u", "x", "-p", tenant["token"])
    assert again.returncode == 0, again.stdout + again.stderr

    wheel = demo_dists[0]
    other = build_package(tmp_path, "walk-demo", "1.0.0", value=99)[0]
    assert other.name == wheel.name and other.read_bytes() != wheel.read_bytes()
    response = post_upload(tenant["upload_url"], tenant["token"], other, name="walk-demo", version="1.0.0")
    assert response.status_code == 400
    assert response.json() == {"message": "400 Bad request - Validation failed: File name has already been taken"}
    # twine (like pdm and hatch) prints the status line, not the body: the reason is there, through the gateway
    assert response.reason == "Validation failed: File name has already been taken"
    refused = twine_upload([other], env, "--repository-url", tenant["upload_url"], "-u", "x", "-p", tenant["token"])
    assert refused.returncode != 0
    printed = " ".join((refused.stdout + refused.stderr).split())  # rich wraps twine's lines
    assert "Validation failed: File name has already been taken" in printed
    files = requests.get(f"{tenant['simple_url']}/walk-demo", auth=("x", tenant["token"]), timeout=30)
    assert files.text.count("walk_demo-1.0.0-py3-none-any.whl<") == 1


def test_invalid_version_is_refused(registry_stack, tenant, demo_dists) -> None:
    response = post_upload(tenant["upload_url"], tenant["token"], demo_dists[0], name="walk-demo",
                           version="1.2.3-45-abcdefgh", filename="walk_demo-1.2.3-py3-none-any.whl")
    assert response.status_code == 400
    assert response.json() == {"message": "400 Bad request - Validation failed: Version is invalid"}


def test_long_description_is_truncated(registry_stack, tenant, tmp_path: Path) -> None:
    readme = "D" * 4001
    wheel = build_package(tmp_path, "walk-long", "1.0", value=1, readme=readme)[0]
    response = post_upload(tenant["upload_url"], tenant["token"], wheel, name="walk-long", version="1.0",
                           description=readme)
    assert response.status_code == 201, response.text
    db = MongoClient(registry_stack.env["MONGODB_URL"], tz_aware=True).get_default_database()
    stored = db.distributions.find_one({"project_id": tenant["project"]["id"], "filename": wheel.name})
    assert stored["description"] == "D" * 3997 + "..."
    assert len(stored["description"]) == 4000


def test_201_means_every_replica_lists_the_file(registry_stack, tenant, tmp_path: Path) -> None:
    wheel = build_package(tmp_path, "walk-replicas", "3.0", value=3)[0]
    # Warm both replicas' caches with the index first, so a stale cache would show.
    for replica in registry_stack.index_replica_urls:
        requests.get(f"{replica}/api/v4/projects/{tenant['project']['id']}/packages/pypi/simple",
                     auth=("x", tenant["token"]), timeout=30)
    response = post_upload(tenant["upload_url"], tenant["token"], wheel, name="walk-replicas", version="3.0")
    assert response.status_code == 201, response.text
    for replica in registry_stack.index_replica_urls:
        base = f"{replica}/api/v4/projects/{tenant['project']['id']}/packages/pypi/simple"
        index = requests.get(base, auth=("x", tenant["token"]), timeout=30)
        page = requests.get(f"{base}/walk-replicas", auth=("x", tenant["token"]), timeout=30)
        assert "walk-replicas" in index.text, replica
        assert wheel.name in page.text, replica


def test_one_correlation_id_through_all_services_and_no_token_in_logs(registry_stack, tenant,
                                                                     tmp_path: Path) -> None:
    wheel = build_package(tmp_path, "walk-traced", "1.0", value=5)[0]
    response = post_upload(tenant["upload_url"], tenant["token"], wheel, name="walk-traced", version="1.0")
    assert response.status_code == 201, response.text
    correlation_id = response.headers["X-Request-Id"]

    def carriers(service: str) -> list[dict]:
        return [line for line in registry_stack.read_logs(service) if line.get("correlation_id") == correlation_id]

    assert any(line["event"] == "distribution_stored" for line in carriers("upload-api"))
    assert any(line["event"] == "distribution_indexed" for line in carriers("metadata-worker"))
    for replica in ("index-api-1", "index-api-2"):
        assert any(line["event"] == "index_cache_invalidated" for line in carriers(replica)), replica

    secrets = [tenant["token"]]
    for log in Path(registry_stack.log_dir).glob("*.log"):
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, log.name
        for line in text.splitlines():
            if line.startswith("{") and log.stem != "nginx":
                json.loads(line)  # every line of our services is one JSON object
