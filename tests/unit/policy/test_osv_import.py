"""OSV advisories into blocked rules (SPEC §9): PyPI entries only, versions lists, ECOSYSTEM ranges,
withdrawn advisories, and re-imports replacing an advisory's rules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry_shared.policy.document import BlockedRule, PolicyDocument
from registry_shared.policy.evaluate import EffectivePolicy, compile_policy
from registry_shared.policy.osv import AdvisoryError, advisory_files, apply_advisories, parse_advisory, read_advisory


def advisory(advisory_id: str, *affected: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schema_version": "1.6.0", "id": advisory_id, "modified": "2026-11-02T10:00:00Z",
            "affected": list(affected), **extra}


def pypi(name: str, **fields: Any) -> dict[str, Any]:
    return {"package": {"ecosystem": "PyPI", "name": name}, **fields}


def ranges(*events: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "ECOSYSTEM", "events": list(events)}]


@pytest.mark.parametrize(("affected", "specs"), [
    (pypi("Example_Lib", versions=["0.0.1", "0.0.2"]), ["==0.0.1", "==0.0.2"]),
    (pypi("x", ranges=ranges({"introduced": "0"})), ["*"]),
    (pypi("x", ranges=ranges({"introduced": "2.3.0"}, {"fixed": "2.3.2"})), [">=2.3.0,<2.3.2"]),
    (pypi("x", ranges=ranges({"introduced": "2.5.0"}, {"last_affected": "2.5.0"})), [">=2.5.0,<=2.5.0"]),
    (pypi("x", ranges=ranges({"introduced": "0"}, {"fixed": "1.4"})), ["<1.4"]),
    (pypi("x", ranges=ranges({"introduced": "1.0"}, {"fixed": "1.1"}, {"introduced": "2.0"})), [">=1.0,<1.1", ">=2.0"]),
    (pypi("x", ranges=[{"type": "GIT", "events": [{"introduced": "abc"}]}]), []),
    ({"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}, []),
])
def test_affected_entries_become_rules(affected: dict[str, Any], specs: list[str]) -> None:
    found = parse_advisory(advisory("MAL-1", affected))
    assert [r.versions for r in found.rules] == specs
    assert all(r.reason == "MAL-1" and r.name in ("example-lib", "x") for r in found.rules)


def test_ranges_compare_as_pep_440_versions() -> None:
    affected = pypi("lib", ranges=ranges({"introduced": "2.3.0"}, {"fixed": "2.3.10"}))
    rules = parse_advisory(advisory("MAL-2", affected)).rules
    p = EffectivePolicy.of([compile_policy(PolicyDocument(blocked=rules))])
    assert p.blocked_reason("lib", "2.3.9", "lib-2.3.9.tar.gz") == "MAL-2"
    assert p.blocked_reason("lib", "2.3.10", "lib-2.3.10.tar.gz") is None
    assert p.blocked_reason("lib", "2.2", "lib-2.2.tar.gz") is None


def test_withdrawn_advisories_remove_their_rules_and_reimports_replace() -> None:
    start = PolicyDocument(cooldown_hours=5, blocked=(BlockedRule("keep", "*", "OTHER"),
                                                       BlockedRule("lib", "==1.0", "MAL-3")))
    updated = apply_advisories(start, [parse_advisory(advisory("MAL-3", pypi("lib", versions=["2.0"])))])
    assert updated.blocked == (BlockedRule("keep", "*", "OTHER"), BlockedRule("lib", "==2.0", "MAL-3"))
    assert updated.cooldown_hours == 5
    withdrawn = parse_advisory(advisory("MAL-3", pypi("lib", versions=["2.0"]), withdrawn="2026-11-03T00:00:00Z"))
    assert withdrawn.withdrawn and withdrawn.rules == ()
    assert apply_advisories(updated, [withdrawn]).blocked == (BlockedRule("keep", "*", "OTHER"),)


def test_folders_are_read_recursively(tmp_path: Path) -> None:
    deep = tmp_path / "osv" / "pypi" / "deep"
    deep.mkdir(parents=True)
    (deep / "MAL-4.json").write_text(json.dumps(advisory("MAL-4", pypi("a", versions=["1"]))))
    (tmp_path / "osv" / "MAL-5.json").write_text(json.dumps(advisory("MAL-5", pypi("b", versions=["1"]))))
    (tmp_path / "osv" / "README.md").write_text("not an advisory")
    found = sorted(read_advisory(p).id for p in advisory_files([tmp_path / "osv"]))
    assert found == ["MAL-4", "MAL-5"]


@pytest.mark.parametrize("doc", [[], {"affected": []}, {"id": ""}])
def test_a_document_without_an_id_is_not_an_advisory(doc: object) -> None:
    with pytest.raises(AdvisoryError):
        parse_advisory(doc)


def test_a_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(AdvisoryError, match="bad.json"):
        read_advisory(bad)
