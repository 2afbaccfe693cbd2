"""OSV advisories (the OpenSSF malicious-packages and OSV databases' JSON) turned into blocked rules.

Only `affected` entries of the `PyPI` ecosystem count. Their `versions` lists and `ECOSYSTEM` ranges become
rules whose reason is the advisory id: `introduced`/`fixed` (exclusive)/`last_affected` (inclusive) compared
as PEP 440 versions, `introduced: "0"` meaning every version. A withdrawn advisory blocks nothing.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from ..domain.names import normalize_name
from .document import BlockedRule, PolicyDocument


class AdvisoryError(ValueError):
    """A file that is not an OSV advisory."""


@dataclass(frozen=True)
class Advisory:
    id: str
    withdrawn: bool
    rules: tuple[BlockedRule, ...]


def advisory_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every `.json` file under the given files and folders (recursively), in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


def read_advisory(path: Path) -> Advisory:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdvisoryError(f"{path}: not a JSON document ({exc})") from exc
    return parse_advisory(doc, str(path))


def parse_advisory(doc: object, where: str = "advisory") -> Advisory:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"].strip():
        raise AdvisoryError(f"{where}: an OSV advisory needs an id")
    advisory_id = doc["id"].strip()
    withdrawn = bool(doc.get("withdrawn"))
    rules: list[BlockedRule] = []
    if not withdrawn:
        for affected in doc.get("affected") or ():
            if isinstance(affected, dict):
                rules.extend(_rules(advisory_id, affected))
    return Advisory(advisory_id, withdrawn, tuple(dict.fromkeys(rules)))


def _rules(advisory_id: str, affected: dict[str, Any]) -> Iterator[BlockedRule]:
    package = affected.get("package") or {}
    if not isinstance(package, dict) or package.get("ecosystem") != "PyPI" or not isinstance(package.get("name"), str):
        return
    name = normalize_name(package["name"].strip())
    for version in affected.get("versions") or ():
        if isinstance(version, str) and _version(version) is not None:
            yield BlockedRule(name, f"=={version}", advisory_id)
    for spec in _range_specifiers(affected.get("ranges") or ()):
        yield BlockedRule(name, spec, advisory_id)


def _range_specifiers(ranges: Iterable[Any]) -> Iterator[str]:
    for item in ranges:
        if not isinstance(item, dict) or item.get("type") != "ECOSYSTEM":
            continue
        start: str | None = None  # "" = every version from the first
        for event in item.get("events") or ():
            if not isinstance(event, dict):
                continue
            if "introduced" in event:
                introduced = str(event["introduced"])
                start = "" if introduced == "0" else introduced if _version(introduced) else None
            elif start is not None and "fixed" in event and _version(str(event["fixed"])):
                yield ",".join(filter(None, [f">={start}" if start else "", f"<{event['fixed']}"]))
                start = None
            elif start is not None and "last_affected" in event and _version(str(event["last_affected"])):
                yield ",".join(filter(None, [f">={start}" if start else "", f"<={event['last_affected']}"]))
                start = None
        if start is not None:  # introduced, never fixed: every later version
            yield f">={start}" if start else "*"


def _version(value: str) -> Version | None:
    try:
        return Version(value)
    except InvalidVersion:
        return None


def apply_advisories(doc: PolicyDocument, advisories: Iterable[Advisory]) -> PolicyDocument:
    """The document with each advisory's rules replaced by its new ones (none when withdrawn)."""
    advisories = list(advisories)
    ids = {a.id for a in advisories}
    kept = [r for r in doc.blocked if r.reason not in ids]
    added = [r for a in advisories for r in a.rules]
    return PolicyDocument(doc.cooldown_hours, doc.cooldown_applies_to, doc.cooldown_exempt, doc.upload_time_cutoff,
                          doc.reserved_names, tuple(dict.fromkeys([*kept, *added])))
