"""Versions: GitLab's acceptance regex, and PEP 440 canonical form for matching."""
from __future__ import annotations

import re

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from ..errors import ValidationFailed

# GitLab's Gitlab::Regex.pypi_version_regex, translated from Ruby's extended, case-insensitive form.
_GITLAB_VERSION_RE = re.compile(
    r"""
    v?
    (?:([0-9]+)!)?                                                 # epoch
    ([0-9]+(?:\.[0-9]+)*)                                          # release segment
    ([-_\.]?((a|b|c|rc|alpha|beta|pre|preview))[-_\.]?([0-9]+)?)?  # pre-release
    ((?:-([0-9]+))|(?:[-_\.]?(post|rev|r)[-_\.]?([0-9]+)?))?       # post release
    ([-_\.]?(dev)[-_\.]?([0-9]+)?)?                                # dev release
    (?:\+([a-z0-9]+(?:[-_\.][a-z0-9]+)*))?                         # local version
    """,
    re.IGNORECASE | re.VERBOSE | re.ASCII,
)


def is_valid_version(version: str) -> bool:
    """True when the whole string matches GitLab's PyPI version regex."""
    return bool(_GITLAB_VERSION_RE.fullmatch(version))


def validate_version(version: str) -> str:
    """Return `version` unchanged, or raise 400 `Validation failed: Version is invalid`."""
    if not is_valid_version(version):
        raise ValidationFailed("Version is invalid")
    return version


def canonical_version(version: str) -> str:
    """PEP 440 canonical form, so `1.0` and `1.0.0` are one release.

    Every string GitLab's regex accepts parses under PEP 440; the fallback keeps the raw lower-cased
    string for anything that slips through rather than failing an upload on a normalisation detail.
    """
    try:
        return canonicalize_version(Version(version), strip_trailing_zero=True)
    except InvalidVersion:
        return version.lower()


def versions_equal(a: str, b: str) -> bool:
    """True when two version strings name the same PEP 440 release."""
    return canonical_version(a) == canonical_version(b)
