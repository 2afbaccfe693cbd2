"""SPEC §9 policy documents: defaults, validation (`{"error":"<field> is invalid"}`), and round trips."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from registry_shared.errors import ParameterInvalid
from registry_shared.policy.document import BlockedRule, PolicyDocument, parse_policy
from registry_shared.policy.status import Status, parse_status

EVERY_FIELD = {"cooldown_hours": 0, "cooldown_applies_to": "upstream", "cooldown_exempt": [],
               "upload_time_cutoff": None, "reserved_names": [], "blocked": []}


def test_omitted_fields_take_their_defaults_and_get_returns_every_field() -> None:
    assert parse_policy({}).to_json() == EVERY_FIELD
    assert parse_policy({}) == PolicyDocument()
    assert PolicyDocument().empty


def test_the_spec_example_round_trips_with_patterns_normalised() -> None:
    doc = parse_policy({"cooldown_hours": 72, "cooldown_applies_to": "upstream", "cooldown_exempt": ["numpy", "Acme_*"],
                        "upload_time_cutoff": "2026-11-01T00:00:00Z", "reserved_names": ["acme-*"],
                        "blocked": [{"name": "evil-*", "versions": "*", "reason": "MAL-2026-1234"}]})
    assert doc.cooldown_exempt == ("numpy", "acme-*")
    assert doc.upload_time_cutoff == datetime(2026, 11, 1, tzinfo=UTC)
    assert doc.blocked == (BlockedRule("evil-*", "*", "MAL-2026-1234"),)
    assert doc.to_json()["upload_time_cutoff"] == "2026-11-01T00:00:00Z"
    assert parse_policy(doc.to_json()) == doc


@pytest.mark.parametrize(("body", "field"), [
    ({"cooldown_hours": -1}, "cooldown_hours"),
    ({"cooldown_hours": 8761}, "cooldown_hours"),
    ({"cooldown_hours": 1.5}, "cooldown_hours"),
    ({"cooldown_hours": True}, "cooldown_hours"),
    ({"cooldown_hours": "72"}, "cooldown_hours"),
    ({"cooldown_applies_to": "local"}, "cooldown_applies_to"),
    ({"cooldown_exempt": "numpy"}, "cooldown_exempt"),
    ({"cooldown_exempt": ["num py"]}, "cooldown_exempt"),
    ({"cooldown_exempt": [3]}, "cooldown_exempt"),
    ({"reserved_names": ["a/b"]}, "reserved_names"),
    ({"upload_time_cutoff": "yesterday"}, "upload_time_cutoff"),
    ({"upload_time_cutoff": "2026-11-01T00:00:00"}, "upload_time_cutoff"),  # RFC 3339 needs an offset
    ({"upload_time_cutoff": 1700000000}, "upload_time_cutoff"),
    ({"blocked": {}}, "blocked"),
    ({"blocked": ["evil"]}, "blocked"),
    ({"blocked": [{"name": "evil", "reason": "x"}]}, "blocked"),
    ({"blocked": [{"name": "evil", "versions": "not a spec", "reason": "x"}]}, "blocked"),
    ({"blocked": [{"name": "evil", "versions": "*"}]}, "blocked"),
    ({"blocked": [{"name": "evil", "versions": "*", "reason": ""}]}, "blocked"),
    ({"blocked": [{"name": "", "versions": "*", "reason": "x"}]}, "blocked"),
    ({"blocked": [{"name": "evil", "versions": "*", "reason": "x", "filename": "a/b"}]}, "blocked"),
])
def test_an_invalid_field_is_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ParameterInvalid) as raised:
        parse_policy(body)
    assert raised.value.body() == {"error": f"{field} is invalid"}


def test_a_document_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(ParameterInvalid):
        parse_policy([])


@pytest.mark.parametrize("versions", ["*", "==1.2.3", ">=2,<2.1", "~=1.0"])
def test_blocked_rule_versions(versions: str) -> None:
    rule = parse_policy({"blocked": [{"name": "Evil_Pkg", "versions": versions, "reason": "r",
                                      "filename": "*.whl"}]}).blocked[0]
    assert (rule.name, rule.versions, rule.filename) == ("evil-pkg", versions, "*.whl")


@pytest.mark.parametrize(("body", "expected"), [
    ({"status": "quarantined", "reason": "MAL-1"}, (Status.QUARANTINED, "MAL-1")),
    ({"status": "archived"}, (Status.ARCHIVED, "")),
    ({"status": "active", "reason": None}, (Status.ACTIVE, "")),
    ({"status": "deprecated", "reason": "use other"}, (Status.DEPRECATED, "use other")),
])
def test_package_status(body: dict[str, Any], expected: tuple[Status, str]) -> None:
    assert parse_status(body) == expected


@pytest.mark.parametrize("body", [{"status": "deleted"}, {}, {"status": None}, "quarantined"])
def test_another_status_is_invalid(body: object) -> None:
    with pytest.raises(ParameterInvalid) as raised:
        parse_status(body)
    assert raised.value.body() == {"error": "status is invalid"}
