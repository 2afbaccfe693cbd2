"""SPEC §10 through the gateway with real clients: yank (pip skips a yanked release unless pinned),
protection rules (twine refused), audit records (exactly once per event, even redelivered), signed
webhooks (a receiver started here), download counts, and the cleanup policy."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from registry_shared.adapters.amqp import Broker
from registry_shared.events import PackageYanked
from tests.support.servers import wait_until
from tests.support.tenants import private_project

from .clients import fresh_venv, pip_install, post_upload, twine_upload
from .packages import build_package
from .test_walking_registry import client_env, with_credentials


@pytest.fixture(scope="module")
def gov(registry_stack, tmp_path_factory) -> dict[str, Any]:
    """Group `gov`, project `gov/app`: a maintainer (who uploads), a developer, a write deploy token."""
    tenant = private_project(registry_stack, "gov-maintainer", "gov/app", role="maintainer")
    admin = registry_stack.admin
    admin("member", "add", "--user", "gov-maintainer", "--group", "gov", "--role", "maintainer")
    admin("user", "create", "--username", "gov-developer")
    admin("member", "add", "--user", "gov-developer", "--project", "gov/app", "--role", "developer")
    developer = admin("token", "create", "--user", "gov-developer", "--scopes", "api")["token"]
    deploy = admin("deploy-token", "create", "--project", "gov/app", "--username", "gov-ci",
                   "--scopes", "read_package_registry,write_package_registry")["token"]
    admin("user", "create", "--username", "gov-admin", "--admin")
    root = admin("token", "create", "--user", "gov-admin", "--scopes", "api")["token"]
    return {"tenant": tenant, "pid": tenant.project["id"], "gid": tenant.group["id"], "token": tenant.token,
            "developer": developer, "deploy": deploy, "admin": root, "work": tmp_path_factory.mktemp("gov"),
            "stack": registry_stack}


def api(gov, method: str, path: str, token: str | None = None, user: str = "__token__", **kwargs: Any
        ) -> requests.Response:
    return requests.request(method, f"{gov['stack'].base_url}/api/v4{path}", auth=(user, token or gov["token"]),
                            timeout=60, allow_redirects=False, **kwargs)


def wheel_for(gov, name: str, version: str) -> Path:
    """One build per release: a refused upload is retried with the same bytes."""
    built = gov.setdefault("built", {})
    if (name, version) not in built:
        built[name, version] = build_package(gov["work"], name, version, value=len(built))[0]
    return built[name, version]


def upload(gov, name: str, version: str, token: str | None = None, user: str = "__token__") -> requests.Response:
    wheel = wheel_for(gov, name, version)
    return requests.post(gov["tenant"].upload_url, auth=(user, token or gov["token"]), timeout=120,
                         data={"name": name, "version": version, "filetype": "bdist_wheel", ":action": "file_upload",
                               "protocol_version": "1"},
                         files={"content": (wheel.name, wheel.read_bytes(), "application/octet-stream")})


def package_id(gov, name: str, version: str) -> int:
    found = api(gov, "GET", f"/projects/{gov['pid']}/packages", params={"package_name": name}).json()
    [package] = [p for p in found if p["version"] == version]
    return int(package["id"])


def audit(gov, path: str, token: str | None = None, **params: str) -> requests.Response:
    return api(gov, "GET", path, token, params=params)


# -- yank --------------------------------------------------------------------------------------------

def test_pip_skips_a_yanked_release_unless_pinned(gov, tmp_path: Path) -> None:
    for version in ("1.0", "2.0"):
        dists = build_package(gov["work"], "gov-yank", version, value=int(version[0]))
        result = twine_upload(dists, client_env(tmp_path), "--repository-url", gov["tenant"].upload_url,
                              "-u", "__token__", "-p", gov["token"])
        assert result.returncode == 0, result.stdout + result.stderr
    pid, gid = gov["pid"], gov["gid"]
    target = package_id(gov, "gov-yank", "2.0")

    answer = api(gov, "POST", f"/projects/{pid}/packages/{target}/yank", json={"reason": "broken <build>"})
    assert answer.status_code == 201, answer.text
    # Every replica, every scope, at once: HTML carries data-yanked, JSON the reason.
    for replica in gov["stack"].index_replica_urls:
        project_page = requests.get(f"{replica}/api/v4/projects/{pid}/packages/pypi/simple/gov-yank/",
                                    auth=("__token__", gov["token"]), timeout=30).text
        assert project_page.count('data-yanked="broken &lt;build&gt;"') == 2, project_page
        group_page = requests.get(f"{replica}/api/v4/groups/{gid}/-/packages/pypi/simple/gov-yank/",
                                  auth=("__token__", gov["token"]), timeout=30,
                                  headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        yanked = {f["filename"]: f["yanked"] for f in group_page["files"]}
        assert sorted(yanked.values(), key=str) == [False, False, "broken <build>", "broken <build>"], yanked
    shown = api(gov, "GET", f"/projects/{pid}/packages/{target}").json()
    assert (shown["yanked"], shown["yanked_reason"]) == (True, "broken <build>")

    python = fresh_venv(tmp_path / "venv")
    index = with_credentials(f"{gov['tenant'].upload_url}/simple/", gov["token"])
    env = client_env(tmp_path)
    free = pip_install(python, index, "gov-yank", env)
    assert free.returncode == 0 and "gov-yank-1.0" in free.stdout, free.stdout + free.stderr
    pinned = pip_install(python, index, "gov-yank==2.0", env)  # downloads still work
    assert pinned.returncode == 0 and "gov-yank-2.0" in pinned.stdout, pinned.stdout + pinned.stderr

    assert api(gov, "DELETE", f"/projects/{pid}/packages/{target}/yank").status_code == 204
    page = api(gov, "GET", f"/projects/{pid}/packages/pypi/simple/gov-yank/").text
    assert "data-yanked" not in page
    shown = api(gov, "GET", f"/projects/{pid}/packages/{target}").json()
    assert (shown["yanked"], shown["yanked_reason"]) == (False, None)


def test_yank_without_reason_is_true_and_needs_maintainer(gov) -> None:
    assert upload(gov, "gov-plain", "1.0").status_code == 201
    target = package_id(gov, "gov-plain", "1.0")
    path = f"/projects/{gov['pid']}/packages/{target}/yank"
    assert api(gov, "POST", path, gov["developer"]).status_code == 403
    assert api(gov, "POST", path, gov["deploy"], user="gov-ci").status_code == 201  # a write deploy token may
    page = api(gov, "GET", f"/projects/{gov['pid']}/packages/pypi/simple/gov-plain/",
               headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert [f["yanked"] for f in page["files"]] == [True]
    assert api(gov, "POST", f"/projects/{gov['pid']}/packages/999999/yank").status_code == 404


# -- protection rules --------------------------------------------------------------------------------

def test_protection_rules_refuse_developers_and_deploy_tokens(gov) -> None:
    rules = f"/projects/{gov['pid']}/packages/protection/rules"
    created = api(gov, "POST", rules, json={"package_name_pattern": "gov-prot*", "package_type": "pypi",
                                            "minimum_access_level_for_push": "maintainer",
                                            "minimum_access_level_for_delete": "owner"})
    assert created.status_code == 201, created.text
    rule = created.json()
    assert {k: rule[k] for k in ("package_name_pattern", "package_type", "minimum_access_level_for_push",
                                 "minimum_access_level_for_delete")} == {
        "package_name_pattern": "gov-prot*", "package_type": "pypi", "minimum_access_level_for_push": "maintainer",
        "minimum_access_level_for_delete": "owner"}
    duplicate = api(gov, "POST", rules, json={"package_name_pattern": "GOV-PROT*", "package_type": "pypi"})
    assert (duplicate.status_code, duplicate.json()) == (
        422, {"message": "Package name pattern has already been taken"})
    assert api(gov, "POST", rules, gov["developer"], json={"package_name_pattern": "x", "package_type": "pypi"}
               ).status_code == 403
    assert [r["id"] for r in api(gov, "GET", rules).json()] == [rule["id"]]

    refused = upload(gov, "Gov-Protected", "1.0", gov["developer"])  # matched case-insensitively
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden - Package protected."})
    by_deploy = upload(gov, "gov-protected", "1.0", gov["deploy"], user="gov-ci")
    assert (by_deploy.status_code, by_deploy.json()) == (403, {"message": "403 Forbidden - Package protected."})
    assert api(gov, "GET", f"/projects/{gov['pid']}/packages", params={"package_name": "gov-protected"}).json() == []
    assert upload(gov, "gov-protected", "1.0").status_code == 201  # the maintainer's succeeds
    assert upload(gov, "gov-other", "1.0", gov["developer"]).status_code == 201  # another name is not protected

    target = package_id(gov, "gov-protected", "1.0")
    refused_delete = api(gov, "DELETE", f"/projects/{gov['pid']}/packages/{target}")  # maintainer < owner
    assert (refused_delete.status_code, refused_delete.json()) == (
        403, {"message": "403 Forbidden - Package protected."})
    assert api(gov, "DELETE", f"/projects/{gov['pid']}/packages/{target}", gov["admin"]).status_code == 204

    patched = api(gov, "PATCH", f"{rules}/{rule['id']}", json={"minimum_access_level_for_push": None})
    assert patched.status_code == 200 and patched.json()["minimum_access_level_for_push"] is None
    assert upload(gov, "gov-protected", "2.0", gov["developer"]).status_code == 201  # visible at once
    assert api(gov, "DELETE", f"{rules}/{rule['id']}").status_code == 204
    assert api(gov, "GET", rules).json() == []


# -- audit records -----------------------------------------------------------------------------------

def test_each_action_writes_one_audit_record_even_redelivered(gov) -> None:
    assert upload(gov, "gov-audit", "1.0").status_code == 201
    target = package_id(gov, "gov-audit", "1.0")
    assert api(gov, "POST", f"/projects/{gov['pid']}/packages/{target}/yank").status_code == 201
    path = f"/projects/{gov['pid']}/audit_events"

    def names() -> list[tuple[str, Any]]:
        found = audit(gov, path, per_page="100").json()
        return [(r["event_name"], (r["target"] or {}).get("name")) for r in found]

    [wheel] = [w for (n, _v), w in gov["built"].items() if n == "gov-audit"]
    refused = post_upload(gov["tenant"].upload_url, gov["token"], wheel, name="gov-audit", version="1.0",
                          filename="gov_audit-1.0-1-py3-none-any.whl", content=b"not a zip",
                          sha256_digest=hashlib.sha256(b"not a zip").hexdigest())
    assert refused.status_code == 400, refused.text
    wait_until(lambda: ("package_yanked", "gov-audit") in names(), 10, "the yank's audit record")
    wait_until(lambda: ("package_rejected", "gov-audit") in names(), 10, "the refusal's audit record")
    assert names().count(("package_published", "gov-audit")) == 1
    [record] = audit(gov, path, event_name="package_yanked").json()[:1]
    assert record["author"]["username"] == "gov-maintainer" and record["entity_type"] == "project"
    assert record["entity_path"] == "gov/app" and record["correlation_id"] and record["ip_address"]

    # The same event delivered twice (one message id) writes one record.
    before = int(audit(gov, path, per_page="1").headers["X-Total"])
    event = PackageYanked(project_id=gov["pid"], package_id=target, name="gov-audit", version="1.0",
                          reason="twice", actor={"principal": "user", "user_id": None, "credential_id": None})
    message_id = uuid.uuid4().hex

    async def publish_twice() -> None:
        broker = Broker(gov["stack"].env["AMQP_URL"], gov["stack"].env["AMQP_EXCHANGE"])
        await broker.connect()
        try:
            for _ in range(2):
                await broker.publish(event, "redelivery-test", message_id=message_id)
        finally:
            await broker.close()

    asyncio.run(publish_twice())
    wait_until(lambda: int(audit(gov, path, per_page="1").headers["X-Total"]) > before, 10, "the record")
    # Give a second write every chance to land (the consumer runs messages concurrently), then count.
    wait_until(lambda: audit(gov, path, event_name="package_yanked").json()[0]["details"]["reason"] == "twice",
               10, "the newest record")
    records = [r for r in audit(gov, path, per_page="100").json() if r["correlation_id"] == "redelivery-test"]
    assert len(records) == 1
    assert int(audit(gov, path, per_page="1").headers["X-Total"]) == before + 1

    page = audit(gov, path, per_page="1", page="2")
    assert page.headers["X-Page"] == "2" and page.headers["X-Per-Page"] == "1" and page.headers["X-Prev-Page"] == "1"
    assert 'rel="next"' in page.headers["Link"]
    assert audit(gov, f"/groups/{gov['gid']}/audit_events", token=gov["developer"]).status_code == 404
    group = audit(gov, f"/groups/{gov['gid']}/audit_events", event_name="package_published").json()
    assert "gov-audit" in [r["target"]["name"] for r in group]
    future = audit(gov, path, created_after="2999-01-01T00:00:00Z")
    assert future.json() == [] and future.headers["X-Total"] == "0"
    assert audit(gov, path, token=gov["developer"]).status_code == 403
    assert audit(gov, "/audit_events", token=gov["token"]).status_code == 403
    everything = audit(gov, "/audit_events", token=gov["admin"], event_name="token_created", per_page="100").json()
    assert any(r["details"]["token_kind"] == "deploy" and r["entity_type"] == "project" for r in everything)
    assert api(gov, "DELETE", f"{path}/1").status_code in (404, 405)


# -- webhooks ----------------------------------------------------------------------------------------

class Receiver:
    """A local HTTP server that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_signed_publish_hook_and_a_dead_hook_never_slows_an_upload(gov) -> None:
    receiver = Receiver()
    try:
        hooks = f"/groups/{gov['gid']}/hooks"
        created = api(gov, "POST", hooks, json={"url": receiver.url, "token": "s3cret-hook",
                                                "events": ["package_published"]})
        assert created.status_code == 201, created.text
        assert "token" not in created.json() and created.json()["events"] == ["package_published"]
        assert upload(gov, "gov-hooked", "1.0").status_code == 201
        wait_until(lambda: receiver.received, 15, "the hook's delivery")
        headers, body = receiver.received[0]
        assert headers["X-Gitlab-Event"] == "Package Hook" and headers["X-Gitlab-Token"] == "s3cret-hook"
        expected = hmac.new(b"s3cret-hook", body, hashlib.sha256).hexdigest()
        assert headers["X-Registry-Signature"] == f"sha256={expected}"
        payload = json.loads(body)
        assert payload["object_kind"] == "package_event" and payload["event_name"] == "package_published"
        assert payload["target"]["name"] == "gov-hooked" and payload["entity_path"] == "gov/app"
        assert api(gov, "DELETE", f"{hooks}/{created.json()['id']}").status_code == 204
        assert api(gov, "GET", hooks).json() == []
    finally:
        receiver.close()

    def timed(name: str) -> float:
        wheel_for(gov, name, "1.0")  # built before the clock starts: only the upload is timed
        started = time.perf_counter()
        assert upload(gov, name, "1.0").status_code == 201
        return time.perf_counter() - started

    without = min(timed(f"gov-nohook-{i}") for i in range(3))
    dead = api(gov, "POST", f"/projects/{gov['pid']}/hooks", json={"url": f"http://127.0.0.1:{closed_port()}/x"})
    assert dead.status_code == 201
    with_dead = min(timed(f"gov-deadhook-{i}") for i in range(3))
    print(f"upload with no hook: {without * 1000:.0f} ms; with a hook on a closed port: {with_dead * 1000:.0f} ms")
    assert with_dead < without * 2 + 0.5, (without, with_dead)
    api(gov, "DELETE", f"/projects/{gov['pid']}/hooks/{dead.json()['id']}")

    blocked = requests.post(f"{gov['stack'].service_urls['index-api-1']}/api/v4/projects/{gov['pid']}/hooks",
                            auth=("__token__", gov["token"]), json={"url": "ftp://example.com/"}, timeout=30)
    assert blocked.status_code == 400 and blocked.json()["error"].startswith("url is blocked: ")


# -- downloads ---------------------------------------------------------------------------------------

def test_download_counts_appear_after_downloads(gov) -> None:
    assert upload(gov, "gov-counted", "1.0").status_code == 201
    target = package_id(gov, "gov-counted", "1.0")
    [file] = api(gov, "GET", f"/projects/{gov['pid']}/packages/{target}/package_files").json()
    assert file["downloads"] == 0 and file["last_downloaded_at"] is None
    url = f"/projects/{gov['pid']}/packages/pypi/files/{file['file_sha256']}/{file['file_name']}"
    for _ in range(3):
        answer = api(gov, "GET", url)
        assert answer.status_code == 200 and hashlib.sha256(answer.content).hexdigest() == file["file_sha256"]
    assert api(gov, "HEAD", url).status_code == 200  # not a download
    wait_until(lambda: api(gov, "GET", f"/projects/{gov['pid']}/packages/{target}/package_files"
                           ).json()[0]["downloads"] == 3, 10, "the file's count")
    shown = api(gov, "GET", f"/projects/{gov['pid']}/packages/{target}").json()
    assert shown["downloads"] == 3 and shown["last_downloaded_at"] is not None


# -- cleanup policy ----------------------------------------------------------------------------------

def test_cleanup_dry_run_lists_and_a_real_run_deletes_exactly_that(gov) -> None:
    for version in ("1.0", "2.0rc1", "2.0", "10.0"):
        assert upload(gov, "gov-clean", version).status_code == 201
    assert upload(gov, "gov-single", "1.0").status_code == 201
    policy = f"/projects/{gov['pid']}/packages/cleanup_policy"
    assert api(gov, "GET", policy).json() == {"keep_n_latest_versions": None, "delete_prereleases_older_than_days":
                                              None, "delete_not_downloaded_for_days": None, "enabled": False}
    assert api(gov, "PUT", policy, json={"keep_n_latest_versions": 0}).status_code == 400
    put = api(gov, "PUT", policy, json={"keep_n_latest_versions": 2, "delete_not_downloaded_for_days": 0})
    assert put.status_code == 200 and put.json()["keep_n_latest_versions"] == 2

    def versions(name: str) -> list[str]:
        return sorted(p["version"] for p in api(gov, "GET", f"/projects/{gov['pid']}/packages",
                                                 params={"package_name": name, "per_page": "100"}).json()
                      if p["name"] == name)

    # Not downloaded for 0 days = every release: but never the only remaining version of a name.
    dry = api(gov, "POST", f"{policy}/run", params={"dry_run": "true"})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    listed = {(d["name"], d["version"]) for d in dry.json()["deleted"]}
    assert ("gov-clean", "10.0") not in listed and ("gov-single", "1.0") not in listed
    assert {("gov-clean", "1.0"), ("gov-clean", "2.0"), ("gov-clean", "2.0rc1")} <= listed
    assert versions("gov-clean") == ["1.0", "10.0", "2.0", "2.0rc1"]  # nothing deleted

    real = api(gov, "POST", f"{policy}/run", params={"dry_run": "false"})
    assert real.status_code == 200 and real.json()["dry_run"] is False
    assert {(d["name"], d["version"]) for d in real.json()["deleted"]} == listed
    assert versions("gov-clean") == ["10.0"] and versions("gov-single") == ["1.0"]
    api(gov, "PUT", policy, json={"keep_n_latest_versions": None, "delete_not_downloaded_for_days": None})


# -- registry-admin ----------------------------------------------------------------------------------

def test_registry_admin_governance_commands(gov) -> None:
    admin = gov["stack"].admin
    assert upload(gov, "gov-admin-cli", "1.0").status_code == 201
    target = package_id(gov, "gov-admin-cli", "1.0")
    yanked = admin("package", "yank", "--project", "gov/app", "--package-id", str(target), "--reason", "cli")
    assert (yanked["yanked"], yanked["yanked_reason"], yanked["files"]) == (True, "cli", 1)
    page = api(gov, "GET", f"/projects/{gov['pid']}/packages/pypi/simple/gov-admin-cli/").text
    assert 'data-yanked="cli"' in page  # every replica dropped its page before the command returned
    assert admin("package", "unyank", "--project", "gov/app", "--package-id", str(target))["yanked"] is False

    rule = admin("protection", "create", "--project", "gov/app", "--pattern", "gov-cli-*", "--push", "owner")
    assert rule["minimum_access_level_for_push"] == "owner"
    assert [r["id"] for r in admin("protection", "list", "--project", "gov/app")["rules"]] == [rule["id"]]
    assert upload(gov, "gov-cli-x", "1.0").status_code == 403  # the maintainer is below owner, at once
    assert admin("protection", "update", "--project", "gov/app", "--id", str(rule["id"]), "--push", "none"
                 )["minimum_access_level_for_push"] is None
    with pytest.raises(RuntimeError, match="Package name pattern has already been taken"):
        admin("protection", "create", "--project", "gov/app", "--pattern", "GOV-CLI-*")
    assert admin("protection", "delete", "--project", "gov/app", "--id", str(rule["id"]))["deleted"] is True

    hook = admin("hook", "create", "--group", "gov", "--url", "http://127.0.0.1:9/never", "--token", "t0k",
                 "--events", "package_yanked")
    assert "token" not in hook and hook["events"] == ["package_yanked"]
    assert [h["id"] for h in admin("hook", "list", "--group", "gov")["hooks"]] == [hook["id"]]
    assert admin("hook", "delete", "--group", "gov", "--id", str(hook["id"]))["deleted"] is True

    policy = admin("cleanup", "set", "--project", "gov/app", "--keep-n-latest-versions", "5", "--enabled", "true")
    assert (policy["keep_n_latest_versions"], policy["enabled"]) == (5, True)
    assert admin("cleanup", "show", "--project", "gov/app")["keep_n_latest_versions"] == 5
    admin("cleanup", "set", "--project", "gov/app", "--keep-n-latest-versions", "none", "--enabled", "false")

    wait_until(lambda: any(r["details"].get("reason") == "cli" for r in admin(
        "audit", "list", "--project", "gov/app", "--event-name", "package_yanked")["records"]), 10, "the record")
    records = admin("audit", "list", "--event-name", "protection_rule_created")["records"]
    assert any(r["details"]["rule"]["package_name_pattern"] == "gov-cli-*" and r["author"]["type"] == "system"
               for r in records)
