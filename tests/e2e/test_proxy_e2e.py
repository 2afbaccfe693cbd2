"""The pypi.org proxy end to end: pip through the gateway, index-api and the proxy, against pypiserver (from
PyPI) on loopback holding wheels these tests build. Never against pypi.org (see test_proxy_live.py)."""
from __future__ import annotations

import hashlib
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from minio.error import S3Error
from pymongo import MongoClient

from registry_shared.adapters.s3 import ObjectStore
from tests.support.servers import BackingServices, RegistryStack, clean_pip_env
from tests.support.upstream import PypiServer

from .clients import fresh_venv, pip_install, twine_upload
from .packages import build_package

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    work = tmp_path_factory.mktemp("proxy-dists")
    return {
        "upstream-only": build_package(work / "a", "px-upstream-only", "1.0", value=7),
        "shadow-upstream": build_package(work / "b", "px-shadow", "9.0", value=9),
        "shadow-local": build_package(work / "c", "px-shadow", "1.0", value=1),
        "tamper": build_package(work / "d", "px-tamper", "1.0", value=3),
        "tamper-other": build_package(work / "e", "px-tamper", "1.0", value=4),  # same names, other bytes
        "sized": build_package(work / "f", "px-sized", "2.0", value=2),  # listed, never downloaded
    }


@pytest.fixture(scope="module")
def pypi(tmp_path_factory: pytest.TempPathFactory, dists) -> Iterator[PypiServer]:
    server = PypiServer(tmp_path_factory.mktemp("pypiserver"))
    server.add(*dists["upstream-only"], *dists["shadow-upstream"], dists["tamper"][0], *dists["sized"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy_stack(backing_services: BackingServices, tmp_path_factory: pytest.TempPathFactory,
                pypi: PypiServer) -> Iterator[RegistryStack]:
    """A registry of its own whose proxy's upstream is the pypiserver (the session's stack keeps pypi.org)."""
    stack = RegistryStack(tmp_path_factory.mktemp("proxy-stack") / "var", backing_services, name="proxy")
    stack.env["PROXY_UPSTREAM_URL"] = pypi.url
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture(scope="module")
def tenant(proxy_stack: RegistryStack, dists, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    admin = proxy_stack.admin
    admin("user", "create", "--username", "mirror-dev")
    group = admin("group", "create", "--path", "mirror", "--visibility", "private")
    project = admin("project", "create", "--path", "mirror/app", "--visibility", "private")
    quiet = admin("project", "create", "--path", "mirror/quiet", "--visibility", "private")
    admin("member", "add", "--user", "mirror-dev", "--group", "mirror", "--role", "developer")
    admin("settings", "set", "--project", "mirror/quiet", "--forwarding", "off")
    token = admin("token", "create", "--user", "mirror-dev", "--scopes", "api")["token"]
    base = proxy_stack.base_url
    uploaded = twine_upload(dists["shadow-local"], clean_pip_env(home=tmp_path_factory.mktemp("twine-home")),
                            "--repository-url", f"{base}/api/v4/projects/{project['id']}/packages/pypi",
                            "-u", "__token__", "-p", token)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    return {"token": token, "group": group, "project": project, "quiet": quiet,
            "project_simple": f"{base}/api/v4/projects/{project['id']}/packages/pypi/simple",
            "group_simple": f"{base}/api/v4/groups/{group['id']}/-/packages/pypi/simple",
            "quiet_simple": f"{base}/api/v4/projects/{quiet['id']}/packages/pypi/simple"}


def with_token(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"__token__:{token}@{parts.netloc}"))


@pytest.fixture(scope="module")
def pip_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv for the module's pip runs; each install goes to a directory of its own (`--target`,
    which ignores what is installed anywhere else), so every install really downloads."""
    return fresh_venv(tmp_path_factory.mktemp("pip-venv") / "venv")


def install(python: Path, tmp_path: Path, index_url: str, token: str,
            requirement: str) -> tuple[subprocess.CompletedProcess, Path]:
    target = tmp_path / "site"
    result = pip_install(python, with_token(index_url, token), requirement, clean_pip_env(home=tmp_path / "home"),
                         "--only-binary", ":all:", "--target", str(target))
    return result, target


def value_of(python: Path, target: Path, module: str) -> str:
    done = subprocess.run([str(python), "-c", f"import {module}; print({module}.VALUE)"], capture_output=True,
                          text=True, timeout=60, env={**clean_pip_env(home=target.parent / "home"),
                                                       "PYTHONPATH": str(target)})
    return done.stdout.strip()


@pytest.mark.parametrize("scope", ["project_simple", "group_simple"])
def test_pip_installs_an_upstream_only_package(tenant, pypi: PypiServer, pip_python: Path, tmp_path: Path,
                                               scope: str) -> None:
    page = requests.get(f"{tenant[scope]}/px-upstream-only/", auth=("__token__", tenant["token"]), timeout=60)
    assert page.status_code == 200, page.text
    assert f"{tenant[scope].removesuffix('/simple')}/files/" in page.text  # registry URLs in this scope
    assert pypi.url.removesuffix("/simple/") not in page.text
    result, target = install(pip_python, tmp_path, tenant[scope], tenant["token"], "px-upstream-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert value_of(pip_python, target, "px_upstream_only") == "7"


def test_second_install_works_with_the_upstream_stopped(tenant, pypi: PypiServer, pip_python: Path,
                                                        tmp_path: Path) -> None:
    first, _ = install(pip_python, tmp_path / "first", tenant["project_simple"], tenant["token"], "px-upstream-only")
    assert first.returncode == 0, first.stdout + first.stderr
    pypi.stop()
    try:
        second, target = install(pip_python, tmp_path / "second", tenant["project_simple"], tenant["token"],
                                 "px-upstream-only")
        assert second.returncode == 0, second.stdout + second.stderr
        assert value_of(pip_python, target, "px_upstream_only") == "7"
    finally:
        pypi.start()


@pytest.mark.parametrize("scope", ["project_simple", "group_simple"])
def test_a_local_name_installs_only_the_local_package(proxy_stack: RegistryStack, tenant, pip_python: Path,
                                                      tmp_path: Path, scope: str) -> None:
    result, target = install(pip_python, tmp_path, tenant[scope], tenant["token"], "px-shadow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert value_of(pip_python, target, "px_shadow") == "1"  # 1.0 from the project, not upstream's 9.0
    page = requests.get(f"{tenant[scope]}/px-shadow/", auth=("__token__", tenant["token"]), timeout=60)
    assert "px_shadow-1.0" in page.text and "9.0" not in page.text
    assert not [line for line in proxy_stack.read_logs("proxy") if "px-shadow" in str(line.get("path", ""))]


def test_forwarding_off_is_404(tenant, pip_python: Path, tmp_path: Path) -> None:
    response = requests.get(f"{tenant['quiet_simple']}/px-upstream-only/", auth=("__token__", tenant["token"]),
                            timeout=60)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Package Not Found"}
    result, _ = install(pip_python, tmp_path, tenant["quiet_simple"], tenant["token"], "px-upstream-only")
    assert result.returncode != 0


def test_tampered_upstream_file_is_refused_and_not_cached(proxy_stack: RegistryStack, tenant, pypi: PypiServer,
                                                          dists, pip_python: Path, tmp_path: Path) -> None:
    wheel, other = dists["tamper"][0], dists["tamper-other"][0]
    assert wheel.name == other.name and wheel.read_bytes() != other.read_bytes()
    advertised = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = requests.get(f"{tenant['project_simple']}/px-tamper/", auth=("__token__", tenant["token"]), timeout=60)
    assert f"#sha256={advertised}" in page.text  # the proxy now holds the page with the original's hash
    pypi.add(other)  # upstream serves other bytes under the listed name

    for attempt in ("first", "second"):
        result, _ = install(pip_python, tmp_path / attempt, tenant["project_simple"], tenant["token"], "px-tamper")
        assert result.returncode != 0, result.stdout
        store = ObjectStore(proxy_stack.env["S3_ENDPOINT"], proxy_stack.env["S3_ACCESS_KEY"],
                            proxy_stack.env["S3_SECRET_KEY"], proxy_stack.env["S3_BUCKET"])
        with pytest.raises(S3Error):
            store.client.stat_object(store.bucket, f"proxy/{advertised}/{wheel.name}")
    db = MongoClient(proxy_stack.env["MONGODB_URL"]).get_default_database()
    doc = db.proxy_dists.find_one({"_id": f"{advertised}/{wheel.name}"})
    assert doc is not None and not doc.get("stored")
    rejected = [line for line in proxy_stack.read_logs("proxy") if line.get("event") == "upstream_file_rejected"]
    assert len(rejected) >= 2 and rejected[-1]["reason"] == "sha256_mismatch"


@pytest.mark.parametrize("scope", ["project_simple", "group_simple"])
def test_json_page_of_an_html_upstream_gives_every_size(proxy_stack: RegistryStack, tenant, dists,
                                                        scope: str) -> None:
    """SPEC §5: pypiserver's pages give no sizes; the proxy learns them by HEAD, so its JSON page may declare
    1.1 (where PEP 700 makes `size` mandatory) without downloading a byte of the files."""
    page = requests.get(f"{tenant[scope]}/px-sized/", auth=("__token__", tenant["token"]), timeout=60,
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200, page.text
    doc = page.json()
    assert doc["meta"]["api-version"] == "1.1"
    assert {f["filename"]: f["size"] for f in doc["files"]} == {p.name: p.stat().st_size for p in dists["sized"]}
    db = MongoClient(proxy_stack.env["MONGODB_URL"]).get_default_database()
    assert not db.proxy_dists.count_documents({"name": "px-sized", "stored": True})  # sizes, not downloads
