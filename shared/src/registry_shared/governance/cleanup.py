"""The cleanup policy's rules (SPEC §10), pure: its parameters, and which releases it deletes.

Each rule null = off: keep the `keep_n_latest_versions` highest versions (PEP 440) of each name; delete
pre-releases older than `delete_prereleases_older_than_days`; delete releases not downloaded (or, never
downloaded, uploaded) for `delete_not_downloaded_for_days`. Never a release whose name a delete protection
rule covers, nor the last remaining version of a name.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import ParameterInvalid
from ..pages import version_key
from ..records.packages import PackageRecord
from .protection import ProtectionRule, delete_protected

FIELDS = ("keep_n_latest_versions", "delete_prereleases_older_than_days", "delete_not_downloaded_for_days")


@dataclass(frozen=True)
class Policy:
    keep_n_latest_versions: int | None = None
    delete_prereleases_older_than_days: int | None = None
    delete_not_downloaded_for_days: int | None = None
    enabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Policy:
        doc = doc or {}
        return cls(**{k: doc.get(k) for k in FIELDS}, enabled=bool(doc.get("enabled")))


def updated_policy(policy: Policy, fields: dict[str, Any]) -> Policy:
    """`policy` with the PUT's fields applied: numbers are integers (keep ≥ 1, days ≥ 0) or null."""
    values = policy.to_json()
    for name in FIELDS:
        if name in fields:
            value = fields[name]
            if value in (None, ""):
                values[name] = None
                continue
            try:
                number = int(value)
            except (TypeError, ValueError) as exc:
                raise ParameterInvalid(name) from exc
            if isinstance(value, bool) or str(value).strip() != str(number) or number < (
                    1 if name == "keep_n_latest_versions" else 0):
                raise ParameterInvalid(name)
            values[name] = number
    if "enabled" in fields:
        raw = fields["enabled"]
        if isinstance(raw, bool):
            values["enabled"] = raw
        elif str(raw).lower() in ("true", "false"):
            values["enabled"] = str(raw).lower() == "true"
        else:
            raise ParameterInvalid("enabled")
    return Policy(**values)


def _prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return False


def chosen(policy: Policy, packages: list[PackageRecord], rules: list[ProtectionRule],
           last_downloads: dict[int, datetime], now: datetime) -> list[PackageRecord]:
    """The releases the policy deletes, by name then version, highest first."""
    by_name: dict[str, list[PackageRecord]] = {}
    for package in packages:
        by_name.setdefault(package.name, []).append(package)
    doomed: list[PackageRecord] = []
    for name, releases in sorted(by_name.items()):
        if delete_protected(rules, name) or delete_protected(rules, releases[0].shown_name):
            continue
        releases.sort(key=lambda p: version_key(p.shown_version), reverse=True)
        picked = []
        for rank, package in enumerate(releases):
            created = package.created_at or now
            seen = last_downloads.get(package.id, created)
            if ((policy.keep_n_latest_versions is not None and rank >= policy.keep_n_latest_versions)
                    or (policy.delete_prereleases_older_than_days is not None and _prerelease(package.shown_version)
                        and created < now - timedelta(days=policy.delete_prereleases_older_than_days))
                    or (policy.delete_not_downloaded_for_days is not None
                        and seen < now - timedelta(days=policy.delete_not_downloaded_for_days))):
                picked.append(package)
        if len(picked) == len(releases):  # never the only remaining version: keep the highest
            picked = picked[1:]
        doomed.extend(picked)
    return doomed
