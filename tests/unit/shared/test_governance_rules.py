"""SPEC §10's pure rules, as tables: protection patterns and levels, audit records from events, webhook
URLs and signatures, yank values."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from registry_shared.domain.access import AccessFacts, Principal, PrincipalKind, Role, Visibility
from registry_shared.errors import Forbidden
from registry_shared.events import (
    DistributionIndexed,
    PackageDeleted,
    PackageStatusChanged,
    PolicyChanged,
    ProtectionRuleChanged,
    TokenCreated,
    TokenRevoked,
)
from registry_shared.governance.access import can_manage
from registry_shared.governance.audit import author, draft_of
from registry_shared.governance.protection import ProtectionRule, check_delete, check_push, delete_protected
from registry_shared.governance.webhooks import UrlBlocked, check_events, check_url, delivery, local_address
from registry_shared.governance.yank import yank_value

USER = Principal(PrincipalKind.USER, user_id=7, scopes=frozenset({"api"}), credential_id=1)
ADMIN = Principal(PrincipalKind.USER, user_id=8, admin=True, scopes=frozenset({"api"}), credential_id=2)
DEPLOY = Principal(PrincipalKind.DEPLOY_TOKEN, scopes=frozenset({"write_package_registry"}), credential_id=3,
                   deploy_project_id=1)


def facts(role: Role) -> AccessFacts:
    return AccessFacts(visibility=Visibility.PRIVATE, role=role, deploy_token_covers=True)


def rule(pattern: str, push: str | None = None, delete: str | None = None) -> ProtectionRule:
    return ProtectionRule(1, 1, pattern, "pypi", push, delete)


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("acme-*", "acme-core", True), ("acme-*", "ACME-Core", True), ("acme-*", "acme", False),
    ("*", "anything", True), ("a.b", "a.b", True), ("a.b", "axb", False), ("*-core", "acme-core", True),
    ("acme", "acme-core", False), ("a*c", "abbbc", True),
])
def test_patterns_use_star_only_and_ignore_case(pattern: str, name: str, matches: bool) -> None:
    assert rule(pattern).matches(name) is matches


@pytest.mark.parametrize(("level", "principal", "role", "refused"), [
    ("maintainer", USER, Role.DEVELOPER, True), ("maintainer", USER, Role.MAINTAINER, False),
    ("owner", USER, Role.MAINTAINER, True), ("owner", USER, Role.OWNER, False),
    ("admin", USER, Role.OWNER, True), ("admin", ADMIN, Role.NONE, False),
    ("maintainer", DEPLOY, Role.NONE, True), ("maintainer", ADMIN, Role.NONE, False),
])
def test_push_levels(level: str, principal: Principal, role: Role, refused: bool) -> None:
    rules = [rule("acme-*", push=level)]
    if refused:
        with pytest.raises(Forbidden) as caught:
            check_push(rules, "acme-x", principal, facts(role))
        assert caught.value.body() == {"message": "403 Forbidden - Package protected."}
    else:
        check_push(rules, "acme-x", principal, facts(role))


def test_a_rule_without_a_level_or_for_another_name_refuses_nothing() -> None:
    check_push([rule("acme-*", delete="owner"), rule("other", push="admin")], "acme-x", DEPLOY, facts(Role.NONE))
    check_delete([rule("acme-*", push="admin")], "acme-x", DEPLOY, facts(Role.NONE))
    with pytest.raises(Forbidden):
        check_delete([rule("acme-*", delete="owner")], "acme-x", DEPLOY, facts(Role.NONE))
    assert delete_protected([rule("acme-*", delete="owner")], "Acme-X")
    assert not delete_protected([rule("acme-*", push="owner")], "acme-x")


@pytest.mark.parametrize(("principal", "role", "allowed"), [
    (USER, Role.DEVELOPER, False), (USER, Role.MAINTAINER, True), (ADMIN, Role.NONE, True), (DEPLOY, Role.NONE, False),
    (Principal(PrincipalKind.USER, user_id=7, scopes=frozenset({"read_api"})), Role.OWNER, False),
])
def test_who_manages(principal: Principal, role: Role, allowed: bool) -> None:
    assert can_manage(principal, facts(role)) is allowed


ACTOR = {"principal": "user", "user_id": 7, "credential_id": 1}


@pytest.mark.parametrize(("event", "name", "entity"), [
    (DistributionIndexed(file_id=1, project_id=5, filename="a-1.whl", name="a", version="1", uploader=ACTOR),
     "package_published", ("project", 5)),
    (PackageDeleted(project_id=5, package_id=2, name="a", version="1", filenames=["x", "y"], whole_package=True),
     "package_deleted", ("project", 5)),
    (PackageDeleted(project_id=5, package_id=2, name="a", version="1", filenames=["x"], whole_package=False),
     "package_file_deleted", ("project", 5)),
    (ProtectionRuleChanged(project_id=5, rule_id=3, action="updated"), "protection_rule_updated", ("project", 5)),
    (PolicyChanged(scope_type="group", scope_id=4), "policy_updated", ("group", 4)),
    (PackageStatusChanged(project_id=5, name="a", status="archived"), "package_status_changed", ("project", 5)),
    (TokenCreated(token_kind="deploy", token_id=9, group_id=4), "token_created", ("group", 4)),
    (TokenCreated(token_kind="personal", token_id=9, user_id=7), "token_created", ("user", 7)),
    (TokenRevoked(token_kind="deploy", token_id=9, project_id=5), "token_revoked", ("project", 5)),
])
def test_each_event_makes_its_record(event: object, name: str, entity: tuple[str, int]) -> None:
    draft = draft_of(event)  # type: ignore[arg-type]  # every row is an Event
    assert draft is not None
    assert (draft.event_name, (draft.entity_type, draft.entity_id)) == (name, entity)


def test_cache_only_revocations_and_jobs_make_no_record() -> None:
    assert draft_of(TokenRevoked(token_kind="personal", token_id=1)) is None  # a repeated revocation
    assert draft_of(TokenRevoked(token_kind="job", token_id=1, user_id=7)) is None


def test_authors() -> None:
    assert author(ACTOR, {7: "ann"}) == {"type": "user", "id": 7, "username": "ann"}
    assert author({"principal": "deploy_token", "user_id": None, "credential_id": 3}, {})["type"] == "deploy_token"
    assert author({}, {}) == {"type": "system", "id": None, "username": "registry-admin"}


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("169.254.169.254", True), ("::1", True),
    ("fe80::1", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", True), ("93.184.216.34", False),
    ("2606:2800:220:1::1", False),
])
def test_local_addresses(address: str, local: bool) -> None:
    assert local_address(address) is local


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/", "https://[::1]/", "ftp://example.com/",
                                 "http://10.0.0.1/", "not a url"])
async def test_blocked_urls(url: str) -> None:
    with pytest.raises(UrlBlocked) as caught:
        await check_url(url, allow_local=False)
    assert caught.value.status == 400 and caught.value.body()["error"].startswith("url is blocked: ")


async def test_local_urls_pass_when_allowed() -> None:
    await check_url("http://127.0.0.1:9/x", allow_local=True)


def test_delivery_is_signed_with_the_token() -> None:
    body, headers = delivery({"event_name": "package_published", "id": 4}, "k3y")
    assert json.loads(body) == {"event_name": "package_published", "id": 4, "object_kind": "package_event"}
    assert headers["X-Gitlab-Event"] == "Package Hook" and headers["X-Gitlab-Token"] == "k3y"
    assert headers["X-Registry-Signature"] == "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()


def test_hook_events_are_audit_names() -> None:
    assert check_events(None) == [] and check_events("package_published,token_created") == [
        "package_published", "token_created"]
    with pytest.raises(Exception, match="events is invalid"):
        check_events(["nope"])


@pytest.mark.parametrize(("reason", "value"), [(None, True), ("", True), ("  ", True), ("bad", "bad"),
                                               (" bad ", "bad")])
def test_yank_values(reason: str | None, value: bool | str) -> None:
    assert yank_value(reason) == value
