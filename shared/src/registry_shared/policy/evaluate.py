"""Whether a file is offered under the levels of policy that apply to it, and if not, why.

Each level is compiled once per policy version (`compile_policy`); blocked rules are indexed by exact name
with the wildcard ones behind one alternation, so a file costs a dict lookup and a regex match, not a scan
of every rule. Levels are independent filters: a file is offered only when every level lets it through.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ..domain.simple import FileEntry
from .document import BlockedRule, PolicyDocument
from .patterns import NameSet, glob_regex


class Withheld(str, Enum):
    COOLDOWN = "cooldown"
    CUTOFF = "cutoff"
    BLOCKED = "blocked"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Offered (`withheld` None), or why not: the blocked rule's reason, and for a cooldown when it matures."""

    withheld: Withheld | None = None
    reason: str = ""
    matures_at: float | None = None  # epoch seconds; None: never by itself (or offered)

    @property
    def offered(self) -> bool:
        return self.withheld is None


OFFERED = Verdict()


@dataclass(frozen=True, slots=True)
class _Rule:
    reason: str
    spec: SpecifierSet | None  # None: every version
    filename: re.Pattern[str] | None

    def matches(self, version: Version | None, filename: str) -> bool:
        if self.spec is not None and (version is None or not self.spec.contains(version, prereleases=True)):
            return False
        return self.filename is None or self.filename.fullmatch(filename) is not None


def _compile_rule(rule: BlockedRule) -> _Rule:
    spec = None if rule.versions == "*" else SpecifierSet(rule.versions)
    pattern = re.compile(glob_regex(rule.filename), re.DOTALL) if rule.filename is not None else None
    return _Rule(rule.reason, spec, pattern)


class CompiledPolicy:
    """One level's document, ready to evaluate."""

    def __init__(self, doc: PolicyDocument) -> None:
        self.doc = doc
        self.cooldown_s = doc.cooldown_hours * 3600.0
        self.applies_to_local = doc.cooldown_applies_to == "all"
        self.exempt = NameSet(doc.cooldown_exempt)
        self.cutoff = doc.upload_time_cutoff.timestamp() if doc.upload_time_cutoff else None
        self.reserved = NameSet(doc.reserved_names)
        self.exact: dict[str, list[_Rule]] = {}
        self.wild: list[tuple[re.Pattern[str], _Rule]] = []
        for rule in doc.blocked:
            compiled = _compile_rule(rule)
            if "*" in rule.name:
                self.wild.append((re.compile(glob_regex(rule.name), re.DOTALL), compiled))
            else:
                self.exact.setdefault(rule.name, []).append(compiled)
        self.any_wild = re.compile("|".join(f"(?:{p.pattern})" for p, _ in self.wild), re.DOTALL) if self.wild else None

    @property
    def has_time_rules(self) -> bool:
        return bool(self.cooldown_s) or self.cutoff is not None

    def rules_for(self, name: str) -> tuple[_Rule, ...]:
        """This level's blocked rules whose name pattern matches the (normalised) name."""
        rules = tuple(self.exact.get(name, ()))
        if self.any_wild is not None and self.any_wild.fullmatch(name):
            rules += tuple(rule for pattern, rule in self.wild if pattern.fullmatch(name))
        return rules

    def blocked(self, name: str, version: Version | None, filename: str) -> str | None:
        """The reason of the first rule blocking this file, else None."""
        for rule in self.rules_for(name):
            if rule.matches(version, filename):
                return rule.reason
        return None

    def timing(self, name: str, upload_time: float | None, local: bool, now: float) -> Verdict:
        if local and not self.applies_to_local:
            return OFFERED
        if self.cutoff is not None and (upload_time is None or upload_time > self.cutoff):
            return Verdict(Withheld.CUTOFF)
        if self.cooldown_s and name not in self.exempt:
            if upload_time is None:
                return Verdict(Withheld.COOLDOWN)  # fails closed: an unknown age never matures
            matures = upload_time + self.cooldown_s
            if matures > now:
                return Verdict(Withheld.COOLDOWN, matures_at=matures)
        return OFFERED


@lru_cache(maxsize=4096)
def compile_policy(doc: PolicyDocument) -> CompiledPolicy:
    return CompiledPolicy(doc)


class EffectivePolicy:
    """The levels that apply to a file (instance, groups above, project), empty ones left out.

    What one name meets is remembered per name (its blocked rules across levels, whether a cooldown skips
    it), so a page of many files of one name, or the next download of it, costs dict lookups.
    """

    __slots__ = ("levels", "_local_time", "_upstream_time", "_rules")

    def __init__(self, levels: tuple[CompiledPolicy, ...] = ()) -> None:
        self.levels = levels
        self._local_time = any(level.has_time_rules and level.applies_to_local for level in levels)
        self._upstream_time = any(level.has_time_rules for level in levels)
        self._rules: dict[str, tuple[tuple[CompiledPolicy, tuple[_Rule, ...]], ...]] = {}

    @classmethod
    def of(cls, levels: Iterable[CompiledPolicy | None]) -> EffectivePolicy:
        return cls(tuple(level for level in levels if level is not None and not level.doc.empty))

    def __bool__(self) -> bool:
        return bool(self.levels)

    def __repr__(self) -> str:
        return f"EffectivePolicy({len(self.levels)} levels)"

    def reserves(self, name: str) -> bool:
        """Whether some level reserves the (normalised) name: it is never looked up upstream."""
        return any(name in level.reserved for level in self.levels)

    def _rules_for(self, name: str) -> tuple[tuple[CompiledPolicy, tuple[_Rule, ...]], ...]:
        found = self._rules.get(name)
        if found is None:
            found = tuple((level, rules) for level in self.levels if (rules := level.rules_for(name)))
            if len(self._rules) > 65_536:
                self._rules.clear()
            self._rules[name] = found
        return found

    def passes_all(self, name: str, local: bool) -> bool:
        """Whether every file of the name is offered whatever its version or age (no rule concerns it)."""
        return not self._rules_for(name) and not (self._local_time if local else self._upstream_time)

    def blocked_reason(self, name: str, version: str, filename: str) -> str | None:
        """The reason of the first blocked rule (of any level) this file matches, else None."""
        by_level = self._rules_for(name)
        if not by_level:
            return None
        parsed = _version(version)
        for _level, rules in by_level:
            for rule in rules:
                if rule.matches(parsed, filename):
                    return rule.reason
        return None

    def evaluate(self, name: str, version: str, filename: str, upload_time: str | datetime | float | None,
                 local: bool, now: float) -> Verdict:
        """Blocked first (403 whatever the age), then cutoff (never matures), then cooldown (matures)."""
        reason = self.blocked_reason(name, version, filename)
        if reason is not None:
            return Verdict(Withheld.BLOCKED, reason)
        if not (self._local_time if local else self._upstream_time):
            return OFFERED
        when = upload_time if isinstance(upload_time, float) else epoch(upload_time)
        verdict = OFFERED
        for level in self.levels:
            found = level.timing(name, when, local, now)
            if found.withheld is Withheld.CUTOFF or (found.withheld is Withheld.COOLDOWN and found.matures_at is None):
                return found
            if found.withheld is not None and (verdict.matures_at or 0) < (found.matures_at or 0):
                verdict = found
        return verdict


NO_POLICY = EffectivePolicy()


@lru_cache(maxsize=16384)
def _version(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def epoch(value: str | datetime | None) -> float | None:
    """An upload time (ISO 8601 / RFC 3339 string or datetime) as epoch seconds; None when unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return _parse_time(value)


@lru_cache(maxsize=65536)
def _parse_time(value: str) -> float | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass
class Filtered:
    """What a page keeps of its files, when the next withheld one matures, and how many were withheld why."""

    kept: list[FileEntry]
    matures_at: float | None = None
    withheld: Counter[str] = field(default_factory=Counter)


def filter_entries(name: str, entries: Sequence[FileEntry], policy_of: Callable[[FileEntry], EffectivePolicy],
                   local: bool, now: float) -> Filtered:
    """The files of one name's page that their effective policy offers now."""
    out = Filtered([])
    passes: dict[int, bool] = {}  # by policy: most pages meet one or two, and most names no rule at all
    for entry in entries:
        policy = policy_of(entry)
        offered = passes.get(id(policy))
        if offered is None:
            offered = passes[id(policy)] = not policy or policy.passes_all(name, local)
        if offered:
            out.kept.append(entry)
            continue
        verdict = policy.evaluate(name, entry.version, entry.filename, entry.upload_time, local, now)
        if verdict.offered:
            out.kept.append(entry)
            continue
        out.withheld[verdict.withheld.value if verdict.withheld else ""] += 1
        if verdict.matures_at is not None and (out.matures_at is None or verdict.matures_at < out.matures_at):
            out.matures_at = verdict.matures_at
    return out
