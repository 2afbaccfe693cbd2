"""registry-admin (SPEC §8): one JSON object on stdout and exit 0, or a clear message on stderr and non-zero."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient

ADMIN = str(Path(sys.executable).parent / "registry-admin")


@pytest.fixture
def admin(service_env):
    env = {**os.environ, **service_env}

    def run(*args: str, ok: bool = True) -> dict | str:
        result = subprocess.run([ADMIN, *args], env=env, capture_output=True, text=True, timeout=60)
        if ok:
            assert result.returncode == 0, result.stderr
            assert result.stderr == ""
            return json.loads(result.stdout)
        assert result.returncode != 0 and result.stdout == ""
        assert result.stderr.startswith("registry-admin: ")
        return result.stderr

    run.env = env
    return run


def test_every_command(admin) -> None:
    assert admin("user", "create", "--username", "alice") == {"id": 1, "username": "alice", "admin": False}
    assert admin("group", "create", "--path", "acme")["id"] == 2
    sub = admin("group", "create", "--path", "acme/platform", "--name", "Platform", "--visibility", "internal")
    assert (sub["path"], sub["name"], sub["visibility"], sub["parent_id"]) == (
        "acme/platform", "Platform", "internal", 2)
    project = admin("project", "create", "--path", "acme/platform/api", "--registry-access", "public")
    assert (project["path"], project["registry_access"], project["namespace_id"]) == ("acme/platform/api", "public", 3)
    assert admin("member", "add", "--user", "alice", "--group", "acme", "--role", "maintainer")["access_level"] == 40
    member = admin("member", "add", "--user", "1", "--project", str(project["id"]), "--role", "guest")
    assert member["access_level"] == 10
    token = admin("token", "create", "--user", "alice", "--scopes", "api,read_api", "--expires-at", "2027-01-01")
    assert token["token"].startswith("glpat-") and token["expires_at"] == "2027-01-01"
    assert admin("token", "revoke", "--id", str(token["id"])) == {"id": token["id"], "revoked": True}
    deploy = admin("deploy-token", "create", "--group", "acme", "--username", "deployer",
                   "--scopes", "read_package_registry,write_package_registry")
    assert deploy["username"] == "deployer" and deploy["token"].startswith("gldt-")
    assert admin("deploy-token", "revoke", "--id", str(deploy["id"]))["revoked"] is True
    admin("project", "create", "--path", "acme/tools")
    job = admin("job", "start", "--project", "acme/platform/api", "--user", "alice")
    assert job["token"].startswith("glcbt-")
    assert admin("job", "finish", "--id", str(job["id"])) == {"id": job["id"], "status": "finished"}
    scope = admin("job-token-scope", "add", "--project", "acme/platform/api", "--allow", "acme/tools")
    assert scope["allowed_project"] == "acme/tools"
    assert admin("settings", "set", "--group", "acme", "--forwarding", "off", "--lock") == \
        {"group": "acme", "group_id": 2, "forwarding": False, "forwarding_locked": True}
    assert admin("settings", "set", "--project", "acme/tools", "--forwarding", "on")["forwarding"] is True
    assert admin("settings", "set", "--allow-guest-to-read-packages", "on")["instance"] == \
        {"forwarding": True, "allow_guest_to_read_packages": True}
    assert admin("member", "remove", "--user", "alice", "--group", "acme")["removed"] is True

    # Secrets are stored only as hashes.
    db = MongoClient(admin.env["MONGODB_URL"]).get_default_database()
    stored = json.dumps([*db.personal_tokens.find({}, {"_id": 0}), *db.deploy_tokens.find({}, {"_id": 0}),
                         *db.jobs.find({}, {"_id": 0})], default=str)
    for secret in (token["token"], deploy["token"], job["token"]):
        assert secret not in stored


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("user", "create", "--username", "bob"), None),
     (("project", "create", "--path", "nowhere/app"), "neither a group nor a user"),
     (("group", "create", "--path", "missing/child"), "parent group"),
     (("token", "create", "--user", "ghost", "--scopes", "api"), "user 'ghost' not found"),
     (("token", "create", "--user", "bob", "--scopes", "write_everything"), "invalid scopes"),
     (("token", "revoke", "--id", "999"), "token 999 not found"),
     (("member", "add", "--user", "bob", "--project", "no/such", "--role", "developer"), "not found"),
     (("settings", "set", "--project", "x/y", "--allow-guest-to-read-packages", "on"), "instance setting")],
)
def test_mistakes_are_clear(admin, args, needle) -> None:
    if needle is None:
        admin(*args)
        assert "already taken" in admin(*args, ok=False)
        return
    if args[0] == "token":
        admin("user", "create", "--username", "bob")
    assert needle in admin(*args, ok=False)


def test_policy_commands(admin, tmp_path: Path) -> None:
    admin("group", "create", "--path", "acme")
    admin("project", "create", "--path", "acme/api")
    set_ = admin("policy", "set", "--group", "acme", "--json", '{"cooldown_hours": 72, "cooldown_exempt": ["Acme_*"]}')
    assert (set_["scope_type"], set_["scope_id"], set_["policy"]["cooldown_exempt"]) == ("group", 1, ["acme-*"])
    assert admin("policy", "show", "--group", "acme")["policy"] == set_["policy"]
    assert admin("policy", "show")["policy"]["blocked"] == []  # the instance's: every field, defaults
    assert "cooldown_hours is invalid" in admin("policy", "set", "--instance", "--json", '{"cooldown_hours": -1}',
                                                 ok=False)
    assert "not valid JSON" in admin("policy", "set", "--instance", "--json", "{", ok=False)
    assert "not found" in admin("policy", "set", "--project", "acme/nope", "--json", "{}", ok=False)
    (tmp_path / "MAL-1.json").write_text(json.dumps({"id": "MAL-1", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "evil"}, "versions": ["1.0"]}]}))
    imported = admin("policy", "import-osv", str(tmp_path), "--project", "acme/api")
    assert imported["policy"]["blocked"] == [{"name": "evil", "versions": "==1.0", "reason": "MAL-1"}]
    assert admin("policy", "import-osv", str(tmp_path), "--project", "acme/api")["policy"]["blocked"] == \
        imported["policy"]["blocked"]  # importing again replaces the advisory's rules
    assert "no such file" in admin("policy", "import-osv", str(tmp_path / "missing"), ok=False)
    (tmp_path / "bad.json").write_text("[]")
    assert "needs an id" in admin("policy", "import-osv", str(tmp_path), ok=False)
