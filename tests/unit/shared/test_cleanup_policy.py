"""The cleanup policy's choice (index_api.cleanup.chosen) and its parameters, as tables."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from registry_shared.errors import ParameterInvalid
from registry_shared.governance.cleanup import Policy, chosen, updated_policy
from registry_shared.governance.protection import ProtectionRule
from registry_shared.records.packages import PackageRecord

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def release(pid: int, name: str, version: str, age_days: int = 0) -> PackageRecord:
    return PackageRecord(pid, 1, name, version, name, version, created_at=NOW - timedelta(days=age_days))


def names(packages: list[PackageRecord]) -> list[str]:
    return [f"{p.name}=={p.version}" for p in packages]


PACKAGES = [release(1, "a", "1.0", 30), release(2, "a", "2.0rc1", 20), release(3, "a", "10.0", 1),
            release(4, "a", "2.0", 10), release(5, "b", "1.0", 100)]


@pytest.mark.parametrize(("policy", "expected"), [
    (Policy(), []),
    (Policy(keep_n_latest_versions=2), ["a==2.0rc1", "a==1.0"]),  # PEP 440: 10.0 > 2.0 > 2.0rc1 > 1.0
    (Policy(keep_n_latest_versions=1), ["a==2.0", "a==2.0rc1", "a==1.0"]),
    (Policy(delete_prereleases_older_than_days=15), ["a==2.0rc1"]),
    (Policy(delete_prereleases_older_than_days=25), []),
    (Policy(delete_not_downloaded_for_days=15), ["a==2.0rc1", "a==1.0"]),  # b's only version stays
    (Policy(delete_not_downloaded_for_days=0), ["a==2.0", "a==2.0rc1", "a==1.0"]),
])
def test_what_a_policy_deletes(policy: Policy, expected: list[str]) -> None:
    assert names(chosen(policy, list(PACKAGES), [], {}, NOW)) == expected


def test_a_recent_download_keeps_a_release_and_protection_keeps_a_name() -> None:
    policy = Policy(delete_not_downloaded_for_days=15)
    assert names(chosen(policy, list(PACKAGES), [], {1: NOW - timedelta(days=1)}, NOW)) == ["a==2.0rc1"]
    protected = [ProtectionRule(1, 1, "A", minimum_access_level_for_delete="owner")]
    assert chosen(policy, list(PACKAGES), protected, {}, NOW) == []
    pushed_only = [ProtectionRule(1, 1, "a", minimum_access_level_for_push="owner")]
    assert names(chosen(policy, list(PACKAGES), pushed_only, {}, NOW)) == ["a==2.0rc1", "a==1.0"]


@pytest.mark.parametrize("fields", [{"keep_n_latest_versions": 0}, {"keep_n_latest_versions": "x"},
                                    {"delete_not_downloaded_for_days": -1}, {"enabled": "maybe"},
                                    {"keep_n_latest_versions": True}, {"delete_prereleases_older_than_days": 1.5}])
def test_bad_parameters(fields: dict[str, object]) -> None:
    with pytest.raises(ParameterInvalid):
        updated_policy(Policy(), fields)


def test_parameters_apply_and_null_turns_a_rule_off() -> None:
    policy = updated_policy(Policy(), {"keep_n_latest_versions": "3", "enabled": True})
    assert policy == Policy(keep_n_latest_versions=3, enabled=True)
    assert updated_policy(policy, {"keep_n_latest_versions": None}).keep_n_latest_versions is None
