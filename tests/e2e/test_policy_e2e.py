"""Supply-chain policy end to end (SPEC §9): a registry whose proxy's upstream is a local PEP 691 index
serving files with chosen upload times; real pip, uv and twine; policies set through the API and
registry-admin; two index-api replicas."""
from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.parse
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.servers import VENV_BIN, BackingServices, RegistryStack, clean_pip_env
from tests.support.upstream import FakeUpstream, ThreadedServer, make_wheel

from .clients import fresh_venv, pip_install, post_upload, twine_upload
from .packages import build_package

pytestmark = [pytest.mark.stack, pytest.mark.slow]
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HOUR = 3600
BLOCKED_1 = {"message": "403 Forbidden - Blocked by policy: MAL-TEST-1"}


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeUpstream, ThreadedServer, dict[str, tuple[str, str]]]]:
    """pol-lib 1.0 (30 days old) and 2.0 (1 hour old); pol-exempt-tool 1.0 (1 hour); pol-notime 1.0 (no upload
    time); acme-secret 1.0 (a name the instance reserves); pol-bad 1.0 (blocked by an advisory)."""
    fake = FakeUpstream(json_pages=True)
    files: dict[str, tuple[str, str]] = {}
    for name, version, age in (("pol-lib", "1.0", 30 * 24 * HOUR), ("pol-lib", "2.0", HOUR),
                               ("pol-exempt-tool", "1.0", HOUR), ("pol-notime", "1.0", None),
                               ("acme-secret", "1.0", 30 * 24 * HOUR), ("pol-bad", "1.0", 30 * 24 * HOUR)):
        filename, content, metadata = make_wheel(name, version, body=f"VALUE = {version!r}\n")
        fake.add(name, filename, content, metadata=metadata, upload_time=None if age is None else iso(age))
        files[f"{name}=={version}"] = (hashlib.sha256(content).hexdigest(), filename)
    server = ThreadedServer(fake.app()).start()
    yield fake, server, files
    server.stop()


@pytest.fixture(scope="module")
def stack(backing_services: BackingServices, tmp_path_factory: pytest.TempPathFactory,
          upstream) -> Iterator[RegistryStack]:
    registry = RegistryStack(tmp_path_factory.mktemp("policy-stack") / "var", backing_services, name="policy")
    registry.env["PROXY_UPSTREAM_URL"] = f"{upstream[1].url}/simple/"
    try:
        yield registry.up()
    finally:
        registry.down()


@pytest.fixture(scope="module")
def t(stack: RegistryStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Group pol (owner pol-owner, developer pol-dev) with projects app, other and strict; an admin."""
    admin = stack.admin
    for user in ("pol-owner", "pol-dev"):
        admin("user", "create", "--username", user)
    admin("user", "create", "--username", "pol-admin", "--admin")
    group = admin("group", "create", "--path", "pol", "--visibility", "private")
    projects = {p: admin("project", "create", "--path", f"pol/{p}", "--visibility", "private")
                for p in ("app", "other", "strict")}
    admin("member", "add", "--user", "pol-owner", "--group", "pol", "--role", "owner")
    admin("member", "add", "--user", "pol-dev", "--group", "pol", "--role", "developer")
    tokens = {u: admin("token", "create", "--user", u, "--scopes", "api")["token"]
              for u in ("pol-owner", "pol-dev", "pol-admin")}
    base = stack.base_url
    out: dict[str, Any] = {"group": group, "projects": projects, "tokens": tokens, "base": base,
                           "work": tmp_path_factory.mktemp("policy-work")}
    out["roots"] = {p: f"{base}/api/v4/projects/{doc['id']}/packages/pypi" for p, doc in projects.items()}
    out["roots"]["group"] = f"{base}/api/v4/groups/{group['id']}/-/packages/pypi"
    # Local packages: pol-local 1.0 and 1.1 in pol/other, 3.0 in pol/app.
    for project, version in (("other", "1.0"), ("other", "1.1"), ("app", "3.0")):
        dists = build_package(out["work"] / f"{project}-{version}", "pol-local", version, value=int(version[0]))
        result = twine_upload(dists, clean_pip_env(home=out["work"] / "home"), "--repository-url",
                              out["roots"][project], "-u", "__token__", "-p", tokens["pol-owner"])
        assert result.returncode == 0, result.stdout + result.stderr
    # The group's policy: 72 h, with pol-exempt-* exempt; pol/app tries to loosen it; pol/strict adds a cutoff.
    assert put(out, "group", {"cooldown_hours": 72, "cooldown_exempt": ["pol_exempt-*"]}).status_code == 200
    assert put(out, "app", {"cooldown_hours": 0, "cooldown_exempt": ["pol-lib", "pol-notime"]}).status_code == 200
    assert put(out, "strict", {"upload_time_cutoff": iso(10 * 24 * HOUR)}).status_code == 200
    return out


def policy_url(t: dict[str, Any], scope: str) -> str:
    if scope == "instance":
        return f"{t['base']}/api/v4/application/packages/pypi/policy"
    return f"{t['roots'][scope]}/policy"


def put(t: dict[str, Any], scope: str, doc: object, user: str = "pol-owner",
        base: str | None = None) -> requests.Response:
    url = policy_url(t, scope)
    if base is not None:
        url = url.replace(t["base"], base)
    return requests.put(url, json=doc, headers={"PRIVATE-TOKEN": t["tokens"][user]}, timeout=60)


def page(t: dict[str, Any], scope: str, name: str, accept: str = JSON_V1, base: str | None = None) -> requests.Response:
    url = f"{t['roots'][scope]}/simple/{name}/"
    if base is not None:
        url = url.replace(t["base"], base)
    return requests.get(url, headers={"Accept": accept}, auth=("__token__", t["tokens"]["pol-owner"]), timeout=60)


def filenames(t: dict[str, Any], scope: str, name: str) -> list[str]:
    response = page(t, scope, name)
    assert response.status_code == 200, response.text
    return [f["filename"] for f in response.json()["files"]]


def download(t: dict[str, Any], scope: str, sha256: str, filename: str) -> requests.Response:
    return requests.get(f"{t['roots'][scope]}/files/{sha256}/{filename}",
                        auth=("__token__", t["tokens"]["pol-owner"]), timeout=60)


def local_file(t: dict[str, Any], scope: str, filename_prefix: str) -> tuple[str, str]:
    """(sha256, filename) of a listed local file of pol-local."""
    for f in page(t, scope, "pol-local").json()["files"]:
        if f["filename"].startswith(filename_prefix):
            return f["hashes"]["sha256"], f["filename"]
    raise AssertionError(f"{filename_prefix} not listed")


# -- cooldown, exemptions, cutoff, unknown upload times ---------------------------------------------------
@pytest.mark.parametrize("scope", ["app", "group"])
def test_a_young_upstream_file_is_withheld_from_html_and_json(t, upstream, scope: str) -> None:
    _fake, _server, files = upstream
    assert filenames(t, scope, "pol-lib") == ["pol_lib-1.0-py3-none-any.whl"]  # 2.0 is an hour old
    body = page(t, scope, "pol-lib").json()
    assert body["versions"] == ["1.0"]
    html = page(t, scope, "pol-lib", accept="text/html")
    assert html.status_code == 200
    assert "pol_lib-1.0-py3-none-any.whl" in html.text and "pol_lib-2.0" not in html.text
    sha256, filename = files["pol-lib==2.0"]
    refused = download(t, scope, sha256, filename)
    assert (refused.status_code, refused.json()) == (404, {"message": "404 Package Not Found"})
    sha256, filename = files["pol-lib==1.0"]
    assert download(t, scope, sha256, filename).status_code == 200


def test_a_project_cannot_loosen_its_group_cooldown(t) -> None:
    assert put(t, "app", {"cooldown_hours": 0}).status_code == 200
    assert filenames(t, "app", "pol-lib") == ["pol_lib-1.0-py3-none-any.whl"]


def test_exemptions_and_cutoff(t) -> None:
    assert filenames(t, "app", "pol-exempt-tool") == ["pol_exempt_tool-1.0-py3-none-any.whl"]  # exempt
    assert filenames(t, "strict", "pol-exempt-tool") == []  # uploaded after pol/strict's cutoff
    assert filenames(t, "strict", "pol-lib") == ["pol_lib-1.0-py3-none-any.whl"]  # before it


def test_an_upstream_file_without_an_upload_time_is_withheld(t, upstream) -> None:
    response = page(t, "app", "pol-notime")
    assert response.status_code == 200 and response.json()["files"] == []
    sha256, filename = upstream[2]["pol-notime==1.0"]
    assert download(t, "app", sha256, filename).status_code == 404


def test_pip_and_uv_install_the_mature_release_only(t, tmp_path: Path) -> None:
    index = t["roots"]["app"] + "/simple"
    parts = urllib.parse.urlsplit(index)
    index = urllib.parse.urlunsplit(parts._replace(netloc=f"__token__:{t['tokens']['pol-owner']}@{parts.netloc}"))
    python = fresh_venv(tmp_path / "pip-venv")
    result = pip_install(python, index, "pol-lib", clean_pip_env(home=tmp_path / "home"), "--target",
                         str(tmp_path / "pip-site"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "pip-site" / "pol_lib-1.0.dist-info").is_dir()
    venv.EnvBuilder(with_pip=False).create(tmp_path / "uv-venv")
    result = subprocess.run([str(VENV_BIN / "uv"), "pip", "install", "--no-cache", "--python",
                             str(tmp_path / "uv-venv" / "bin" / "python"), "--target", str(tmp_path / "uv-site"),
                             "--index-url", index, "pol-lib"],
                            env=clean_pip_env(home=tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "uv-site" / "pol_lib-1.0.dist-info").is_dir()
    result = pip_install(python, index, "pol-lib==2.0", clean_pip_env(home=tmp_path / "home"), "--target",
                         str(tmp_path / "pip-site-2"))
    assert result.returncode != 0  # the young release is not offered at all


# -- reserved names, blocked rules from OSV ----------------------------------------------------------------
def test_a_reserved_name_never_reaches_upstream(t, stack: RegistryStack, upstream) -> None:
    fake = upstream[0]
    assert put(t, "instance", {"reserved_names": ["Acme_*"]}, user="pol-admin").status_code == 200
    for scope in ("app", "group"):
        response = page(t, scope, "acme-secret")
        assert (response.status_code, response.json()) == (404, {"message": "404 Package Not Found"})
    assert fake.page_requests["acme-secret"] == 0
    sha256, filename = upstream[2]["acme-secret==1.0"]
    assert download(t, "app", sha256, filename).status_code == 404
    assert fake.file_requests[filename] == 0


def test_an_osv_advisory_blocks_listing_download_and_upload(t, stack: RegistryStack, upstream, tmp_path: Path) -> None:
    folder = tmp_path / "osv" / "pypi" / "pol"
    folder.mkdir(parents=True)
    (folder / "MAL-TEST-1.json").write_text(json.dumps({
        "schema_version": "1.6.0", "id": "MAL-TEST-1", "modified": "2026-11-02T10:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "Pol_Local"}, "versions": ["1.1"]}]}))
    (folder / "MAL-TEST-2.json").write_text(json.dumps({
        "schema_version": "1.6.0", "id": "MAL-TEST-2", "modified": "2026-11-02T10:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "pol-bad"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}))
    blocked_sha, blocked_name = local_file(t, "other", "pol_local-1.1")
    result = stack.admin("policy", "import-osv", str(tmp_path / "osv"))
    assert result["advisories"] == 2
    assert result["policy"]["reserved_names"] == ["acme-*"]  # the rest of the instance policy stays
    for scope in ("other", "group"):
        listed = filenames(t, scope, "pol-local")
        assert not any(f.startswith("pol_local-1.1") for f in listed) and any("1.0" in f for f in listed)
        assert "1.1" not in page(t, scope, "pol-local").json()["versions"]
        refused = download(t, scope, blocked_sha, blocked_name)
        assert (refused.status_code, refused.json()) == (403, BLOCKED_1)
    assert filenames(t, "app", "pol-bad") == []  # an upstream file, blocked too
    bad_sha, bad_name = upstream[2]["pol-bad==1.0"]
    assert download(t, "app", bad_sha, bad_name).json() == {"message": "403 Forbidden - Blocked by policy: MAL-TEST-2"}
    # Uploading it again (another file of 1.1) is refused with the reason, by the endpoint and by twine.
    dists = build_package(tmp_path / "again", "pol-local", "1.1", value=11)
    response = post_upload(t["roots"]["app"], t["tokens"]["pol-owner"], dists[0], name="pol-local", version="1.1")
    assert (response.status_code, response.json()) == (403, BLOCKED_1)
    twine = twine_upload(dists, clean_pip_env(home=tmp_path / "home"), "--repository-url", t["roots"]["app"],
                         "-u", "__token__", "-p", t["tokens"]["pol-owner"])
    assert twine.returncode != 0 and "Blocked by policy: MAL-TEST-1" in twine.stdout + twine.stderr
    # Withdrawn: the advisory's rules go.
    (folder / "MAL-TEST-1.json").write_text(json.dumps({
        "schema_version": "1.6.0", "id": "MAL-TEST-1", "modified": "2026-11-03T10:00:00Z",
        "withdrawn": "2026-11-03T10:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "pol-local"}, "versions": ["1.1"]}]}))
    stack.admin("policy", "import-osv", str(folder / "MAL-TEST-1.json"))
    assert any(f.startswith("pol_local-1.1") for f in filenames(t, "other", "pol-local"))
    assert download(t, "other", blocked_sha, blocked_name).status_code == 200


# -- PEP 792 status -------------------------------------------------------------------------------------
def set_status(t: dict[str, Any], project: str, name: str, body: object, user: str = "pol-owner") -> requests.Response:
    return requests.put(f"{t['base']}/api/v4/projects/{t['projects'][project]['id']}/packages/pypi/status/{name}",
                        json=body, headers={"PRIVATE-TOKEN": t["tokens"][user]}, timeout=60)


def test_quarantine_hides_files_refuses_downloads_and_is_reversible(t) -> None:
    sha256, filename = local_file(t, "other", "pol_local-1.0")
    answer = set_status(t, "other", "Pol_Local", {"status": "quarantined", "reason": "checking <MAL>"})
    assert (answer.status_code, answer.json()) == (200, {"name": "pol-local", "status": "quarantined",
                                                         "reason": "checking <MAL>"})
    body = page(t, "other", "pol-local").json()
    assert body["files"] == [] and body["meta"]["api-version"] == "1.4"
    assert body["project-status"] == {"status": "quarantined", "reason": "checking <MAL>"}
    html = page(t, "other", "pol-local", accept="text/html").text
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert '<meta name="pypi:project-status-reason" content="checking &lt;MAL&gt;">' in html
    refused = download(t, "other", sha256, filename)
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden - Quarantined: checking <MAL>"})
    # On the group page, pol/app's files of the same name stay.
    assert filenames(t, "group", "pol-local") == [f for f in filenames(t, "group", "pol-local") if "3.0" in f] != []
    assert set_status(t, "other", "pol-local", {"status": "active", "reason": ""}).status_code == 200
    assert filename in filenames(t, "other", "pol-local")
    assert download(t, "other", sha256, filename).status_code == 200


def test_archive_refuses_uploads_keeps_files_and_is_reversible(t, tmp_path: Path) -> None:
    assert set_status(t, "app", "pol-local", {"status": "archived", "reason": "moved"}).status_code == 200
    assert any("3.0" in f for f in filenames(t, "app", "pol-local"))
    assert page(t, "app", "pol-local").json()["project-status"] == {"status": "archived", "reason": "moved"}
    dists = build_package(tmp_path / "new", "pol-local", "4.0", value=4)
    response = post_upload(t["roots"]["app"], t["tokens"]["pol-owner"], dists[0], name="pol-local", version="4.0")
    assert (response.status_code, response.json()) == (400, {"message": "400 Bad request - Package is archived"})
    assert set_status(t, "app", "pol-local", {"status": "active"}).status_code == 200
    response = post_upload(t["roots"]["app"], t["tokens"]["pol-owner"], dists[0], name="pol-local", version="4.0")
    assert response.status_code == 201, response.text


def test_status_validation_and_permission(t) -> None:
    answer = set_status(t, "app", "pol-local", {"status": "gone"})
    assert (answer.status_code, answer.json()) == (400, {"error": "status is invalid"})
    assert set_status(t, "app", "pol-local", {"status": "deprecated"}, user="pol-dev").status_code == 403


# -- management ----------------------------------------------------------------------------------------
def test_policy_management_permissions_and_validation(t) -> None:
    got = requests.get(policy_url(t, "group"), headers={"PRIVATE-TOKEN": t["tokens"]["pol-owner"]}, timeout=60)
    assert got.status_code == 200
    assert set(got.json()) == {"cooldown_hours", "cooldown_applies_to", "cooldown_exempt", "upload_time_cutoff",
                               "reserved_names", "blocked"}
    assert got.json()["cooldown_exempt"] == ["pol-exempt-*"]
    assert put(t, "app", {"cooldown_hours": 1}, user="pol-dev").status_code == 403  # developer < maintainer
    assert put(t, "group", {"cooldown_hours": 1}, user="pol-dev").status_code == 403
    assert put(t, "instance", {}, user="pol-owner").status_code == 403
    assert requests.put(policy_url(t, "app"), json={}, timeout=60).status_code == 401
    bad = put(t, "app", {"cooldown_hours": 9000})
    assert (bad.status_code, bad.json()) == (400, {"error": "cooldown_hours is invalid"})
    bad = put(t, "app", {"blocked": [{"name": "x"}]})
    assert (bad.status_code, bad.json()) == (400, {"error": "blocked is invalid"})
    ok = put(t, "app", {"cooldown_hours": 0})
    assert ok.status_code == 200 and ok.json()["cooldown_applies_to"] == "upstream"


def test_a_policy_change_applies_on_every_replica_when_the_put_returns(t, stack: RegistryStack) -> None:
    one, two = stack.index_replica_urls
    assert put(t, "app", {"cooldown_hours": 0}).status_code == 200
    for replica in (one, two):  # cached on both
        assert any("3.0" in f["filename"] for f in page(t, "app", "pol-local", base=replica).json()["files"])
    assert put(t, "app", {"cooldown_hours": 72, "cooldown_applies_to": "all"}, base=one).status_code == 200
    assert page(t, "app", "pol-local", base=two).json()["files"] == []  # no wait, no poll
    assert put(t, "app", {"cooldown_hours": 0}, base=two).status_code == 200
    assert page(t, "app", "pol-local", base=one).json()["files"] != []


def test_withheld_files_are_counted(t, stack: RegistryStack) -> None:
    metrics = requests.get(f"{stack.index_replica_urls[0]}/metrics", timeout=30).text
    assert 'registry_policy_files_withheld_total{reason="cooldown"}' in metrics
