"""What a package page's badges say, from the real data: a yank (`yanked` on the file documents: `true`, or
the reason), the package's PEP 792 status (the `package_statuses` the PolicyBook holds, SPEC §9), and which
files the effective policy of their project withholds from the index now (blocked, cutoff, cooldown),
evaluated with the same shared code as index-api's pages (`registry_shared.policy.evaluate`, local files).
Pure functions: the caller passes the policy, the status and the time.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from registry_shared.policy.evaluate import EffectivePolicy, Verdict, Withheld
from registry_shared.policy.status import PackageStatus, Status


def is_yanked(value: object) -> bool:
    """`yanked` as stored: `true`, or the reason (a non-empty string); `false` or absent when not yanked."""
    return value is True or (isinstance(value, str) and bool(value.strip()))


def yank_reason(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class StatusBadge:
    status: str  # archived | quarantined | deprecated
    reason: str

    @property
    def explanation(self) -> str:
        return {
            "archived": "This project is archived: no new files are accepted; existing ones install as before.",
            "quarantined": "This project is quarantined: the index offers none of its files and downloads are "
                           "refused.",
            "deprecated": "This project is deprecated.",
        }.get(self.status, "")


def status_badge(status: PackageStatus | None) -> StatusBadge | None:
    """No badge for `active` (or no status set)."""
    if status is None or status.status is Status.ACTIVE:
        return None
    return StatusBadge(status.status.value, status.reason)


@dataclass(frozen=True)
class WithheldBadge:
    why: str  # blocked | cutoff | cooldown
    title: str  # what the badge's tooltip and the file row say


def withheld_badge(verdict: Verdict) -> WithheldBadge | None:
    """The badge of a file the policy withholds (quarantine has its own status badge)."""
    if verdict.withheld is None or verdict.withheld is Withheld.QUARANTINED:
        return None
    if verdict.withheld is Withheld.BLOCKED:
        return WithheldBadge("blocked", f"Blocked by policy: {verdict.reason}")
    if verdict.withheld is Withheld.CUTOFF:
        return WithheldBadge("cutoff", "Uploaded after the policy's upload-time cutoff")
    if verdict.matures_at is None:
        return WithheldBadge("cooldown", "In the policy's cooldown")
    until = datetime.fromtimestamp(verdict.matures_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return WithheldBadge("cooldown", f"In the policy's cooldown until {until}")


def file_badge(policy: EffectivePolicy, name: str, version: str, filename: str, uploaded: datetime | None,
               now: float) -> WithheldBadge | None:
    """One local file of the project whose `policy` this is (its chain of levels), at `now` (epoch seconds)."""
    if not policy or policy.passes_all(name, local=True):
        return None
    return withheld_badge(policy.evaluate(name, version, filename, uploaded, True, now))


def version_badge(policy: EffectivePolicy, name: str, version: str,
                  files: Sequence[tuple[str, datetime | None]], now: float) -> WithheldBadge | None:
    """A version is withheld when every file of it is (pip finds none of them): the first file's badge."""
    badges = [file_badge(policy, name, version, filename, uploaded, now) for filename, uploaded in files]
    if not badges or any(b is None for b in badges):
        return None
    return badges[0]
