"""What policy refuses, as the typed errors the services render (SPEC §9 bodies)."""
from __future__ import annotations

from ..errors import BadRequest, Forbidden, PackageNotFound
from .evaluate import EffectivePolicy, Verdict, Withheld
from .status import PackageStatus, Status


def _phrase(text: str) -> str:
    # A status line carries Latin-1 without control characters; the body keeps the reason as written.
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:200]


class BlockedByPolicy(Forbidden):
    def __init__(self, reason: str) -> None:
        super().__init__(f"403 Forbidden - Blocked by policy: {reason}")
        self.reason = reason

    def reason_phrase(self) -> str | None:
        return _phrase(f"Blocked by policy: {self.reason}")


class Quarantined(Forbidden):
    def __init__(self, reason: str) -> None:
        super().__init__(f"403 Forbidden - Quarantined: {reason}")


class PackageArchived(BadRequest):
    def default_reason(self) -> str:
        return "Package is archived"


def refuse_download(verdict: Verdict) -> None:
    """A withheld file's download: blocked 403 with the reason, cooldown and cutoff 404 (as if absent)."""
    if verdict.withheld is Withheld.BLOCKED:
        raise BlockedByPolicy(verdict.reason)
    if verdict.withheld is Withheld.QUARANTINED:
        raise Quarantined(verdict.reason)
    if verdict.withheld is not None:
        raise PackageNotFound()


def check_upload(policy: EffectivePolicy, status: PackageStatus | None, name: str, version: str,
                 filename: str) -> None:
    """SPEC §9 upload order, after the protection rules: a policy block (403), then package status (400)."""
    reason = policy.blocked_reason(name, version, filename)
    if reason is not None:
        raise BlockedByPolicy(reason)
    if status is not None and status.status is Status.ARCHIVED:
        raise PackageArchived()
