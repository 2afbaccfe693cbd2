"""The policy document: its fields, their defaults and their validation (`{"error":"<field> is invalid"}`)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ..errors import ParameterInvalid
from .patterns import normalize_pattern

MAX_COOLDOWN_HOURS = 8760
APPLIES_TO = ("upstream", "all")
_PATTERN_RE = re.compile(r"^[A-Za-z0-9._*-]{1,200}$")
_FILENAME_PATTERN_RE = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,255}$")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class BlockedRule:
    """`{name, versions, filename?, reason}`: `name` normalised pattern, `versions` `*` or a PEP 440 specifier."""

    name: str
    versions: str
    reason: str
    filename: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "versions": self.versions}
        if self.filename is not None:
            out["filename"] = self.filename
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class PolicyDocument:
    """One level's policy. The defaults are the empty policy, which lets everything through."""

    cooldown_hours: int = 0
    cooldown_applies_to: str = "upstream"
    cooldown_exempt: tuple[str, ...] = ()
    upload_time_cutoff: datetime | None = None
    reserved_names: tuple[str, ...] = ()
    blocked: tuple[BlockedRule, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """Every field, as GET returns it."""
        cutoff = self.upload_time_cutoff
        return {"cooldown_hours": self.cooldown_hours, "cooldown_applies_to": self.cooldown_applies_to,
                "cooldown_exempt": list(self.cooldown_exempt),
                "upload_time_cutoff": cutoff.isoformat().replace("+00:00", "Z") if cutoff else None,
                "reserved_names": list(self.reserved_names), "blocked": [r.to_json() for r in self.blocked]}

    @property
    def empty(self) -> bool:
        return self == PolicyDocument() or (not self.cooldown_hours and self.upload_time_cutoff is None
                                            and not self.reserved_names and not self.blocked)


def parse_policy(doc: object) -> PolicyDocument:
    """Validate a document (from JSON); omitted fields take their defaults. Raises ParameterInvalid(field)."""
    if not isinstance(doc, dict):
        raise ParameterInvalid("policy")
    return PolicyDocument(
        cooldown_hours=_cooldown(doc.get("cooldown_hours", 0)),
        cooldown_applies_to=_applies_to(doc.get("cooldown_applies_to", "upstream")),
        cooldown_exempt=_patterns("cooldown_exempt", doc.get("cooldown_exempt", [])),
        upload_time_cutoff=_cutoff(doc.get("upload_time_cutoff")),
        reserved_names=_patterns("reserved_names", doc.get("reserved_names", [])),
        blocked=tuple(parse_rule(r) for r in _list("blocked", doc.get("blocked", []))),
    )


def parse_rule(rule: object) -> BlockedRule:
    """One blocked rule; anything malformed is `blocked is invalid`."""
    if not isinstance(rule, dict):
        raise ParameterInvalid("blocked")
    name, versions, reason, filename = (rule.get(k) for k in ("name", "versions", "reason", "filename"))
    if not (isinstance(name, str) and _PATTERN_RE.match(name)):
        raise ParameterInvalid("blocked")
    if not isinstance(versions, str) or not valid_versions(versions):
        raise ParameterInvalid("blocked")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ParameterInvalid("blocked")
    if filename is not None and not (isinstance(filename, str) and _FILENAME_PATTERN_RE.match(filename)):
        raise ParameterInvalid("blocked")
    return BlockedRule(normalize_pattern(name), versions.strip(), reason.strip(), filename)


def valid_versions(versions: str) -> bool:
    if versions.strip() == "*":
        return True
    try:
        return bool(SpecifierSet(versions))
    except InvalidSpecifier:
        return False


def _cooldown(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COOLDOWN_HOURS:
        raise ParameterInvalid("cooldown_hours")
    return value


def _applies_to(value: object) -> str:
    if value not in APPLIES_TO:
        raise ParameterInvalid("cooldown_applies_to")
    return str(value)


def _list(field_name: str, value: object) -> list[Any]:
    if not isinstance(value, list) or len(value) > 100_000:
        raise ParameterInvalid(field_name)
    return value


def _patterns(field_name: str, value: object) -> tuple[str, ...]:
    items = _list(field_name, value)
    if not all(isinstance(p, str) and _PATTERN_RE.match(p) for p in items):
        raise ParameterInvalid(field_name)
    return tuple(dict.fromkeys(normalize_pattern(p) for p in items))


def _cutoff(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339_RE.match(value):
        raise ParameterInvalid("upload_time_cutoff")
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParameterInvalid("upload_time_cutoff") from exc
