"""Badges of the package page from the real data (registry_web.badges): the yank as stored, the PEP 792
status, and what the shared policy code withholds now."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry_shared.policy.document import BlockedRule, PolicyDocument
from registry_shared.policy.evaluate import NO_POLICY, EffectivePolicy, compile_policy
from registry_shared.policy.status import PackageStatus, Status
from registry_web.badges import file_badge, is_yanked, status_badge, version_badge, yank_reason

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
HOUR = 3600.0


def policy(**fields: object) -> EffectivePolicy:
    return EffectivePolicy.of([compile_policy(PolicyDocument(**fields))])  # type: ignore[arg-type]


@pytest.mark.parametrize(("stored", "yanked", "reason"), [
    (True, True, ""), ("broken <build>", True, "broken <build>"), (False, False, ""), (None, False, ""),
    ("", False, ""), ("  ", False, ""),
])
def test_yanked_is_true_or_the_reason(stored: object, yanked: bool, reason: str) -> None:
    assert is_yanked(stored) is yanked
    assert yank_reason(stored) == reason


def test_the_status_badge_leaves_active_out() -> None:
    assert status_badge(None) is None
    assert status_badge(PackageStatus(1, "demo", Status.ACTIVE, "fine")) is None
    badge = status_badge(PackageStatus(1, "demo", Status.QUARANTINED, "MAL-1"))
    assert badge is not None and (badge.status, badge.reason) == ("quarantined", "MAL-1")
    assert "none of its files" in badge.explanation


def test_a_blocked_version_is_withheld_with_its_reason() -> None:
    blocked = policy(blocked=(BlockedRule("demo", "==1.0", "MAL-7"),))
    badge = file_badge(blocked, "demo", "1.0", "demo-1.0-py3-none-any.whl", None, NOW)
    assert badge is not None and (badge.why, badge.title) == ("blocked", "Blocked by policy: MAL-7")
    assert file_badge(blocked, "demo", "2.0", "demo-2.0-py3-none-any.whl", None, NOW) is None
    assert file_badge(blocked, "other", "1.0", "other-1.0.tar.gz", None, NOW) is None
    assert file_badge(NO_POLICY, "demo", "1.0", "demo-1.0.tar.gz", None, NOW) is None


def test_a_cooldown_withholds_local_files_only_when_it_applies_to_all() -> None:
    young = datetime.fromtimestamp(NOW - HOUR, UTC)
    old = datetime.fromtimestamp(NOW - 100 * HOUR, UTC)
    upstream_only = policy(cooldown_hours=72)
    assert file_badge(upstream_only, "demo", "1.0", "demo-1.0.tar.gz", young, NOW) is None
    everything = policy(cooldown_hours=72, cooldown_applies_to="all")
    badge = file_badge(everything, "demo", "1.0", "demo-1.0.tar.gz", young, NOW)
    assert badge is not None and badge.why == "cooldown"
    assert badge.title == "In the policy's cooldown until 2026-06-04 11:00 UTC"
    assert file_badge(everything, "demo", "1.0", "demo-1.0.tar.gz", old, NOW) is None


def test_a_file_after_the_cutoff_is_withheld() -> None:
    cutoff = policy(upload_time_cutoff=datetime(2026, 5, 1, tzinfo=UTC), cooldown_applies_to="all")
    badge = file_badge(cutoff, "demo", "1.0", "demo-1.0.tar.gz", datetime(2026, 5, 2, tzinfo=UTC), NOW)
    assert badge is not None and badge.why == "cutoff"
    assert file_badge(cutoff, "demo", "1.0", "demo-1.0.tar.gz", datetime(2026, 4, 2, tzinfo=UTC), NOW) is None


def test_a_version_is_withheld_only_when_every_file_is() -> None:
    wheels_only = policy(blocked=(BlockedRule("demo", "*", "bad wheels", filename="*.whl"),))
    files = (("demo-1.0-py3-none-any.whl", None), ("demo-1.0.tar.gz", None))
    assert version_badge(wheels_only, "demo", "1.0", files, NOW) is None
    assert version_badge(wheels_only, "demo", "1.0", files[:1], NOW) is not None
    assert version_badge(wheels_only, "demo", "1.0", (), NOW) is None
