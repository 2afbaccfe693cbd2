"""Name patterns: PEP 503-normalised names with `*` matching any run of characters.

A set of patterns is compiled once per policy version: exact names go into a set (or a dict), wildcard ones
into one alternation, so matching a name costs a hash lookup and one regex match, whatever the count.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from ..domain.names import normalize_name


def normalize_pattern(pattern: str) -> str:
    """`Acme_*` -> `acme-*`: each part between stars normalised as a name is (runs of `-_.` become `-`)."""
    return "*".join(re.sub(r"[-_.]+", "-", part).lower() for part in pattern.split("*"))


def glob_regex(pattern: str) -> str:
    return ".*".join(re.escape(part) for part in pattern.split("*"))


def matches(pattern: str, name: str) -> bool:
    """Whether the normalised `name` matches one (normalised) pattern."""
    return re.fullmatch(glob_regex(pattern), name, re.DOTALL) is not None


class NameSet:
    """A compiled set of name patterns."""

    __slots__ = ("exact", "wildcard")

    def __init__(self, patterns: Iterable[str]) -> None:
        normalised = [normalize_pattern(p) for p in patterns]
        self.exact = frozenset(p for p in normalised if "*" not in p)
        wild = [p for p in normalised if "*" in p]
        self.wildcard = re.compile("|".join(f"(?:{glob_regex(p)})" for p in wild), re.DOTALL) if wild else None

    def __contains__(self, name: str) -> bool:
        """`name` must already be normalised."""
        return name in self.exact or (self.wildcard is not None and self.wildcard.fullmatch(name) is not None)

    def __bool__(self) -> bool:
        return bool(self.exact) or self.wildcard is not None

    def contains_name(self, name: str) -> bool:
        return normalize_name(name) in self
