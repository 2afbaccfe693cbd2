"""Distribution names: validation (GitLab's rule) and PEP 503 normalisation."""
from __future__ import annotations

import re

from ..errors import ValidationFailed

_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE | re.ASCII)
_NORMALISE_RE = re.compile(r"[-_.]+")


def is_valid_name(name: str) -> bool:
    """True when `name` is a valid distribution name (ASCII letters, digits, `._-` inside)."""
    return bool(_NAME_RE.fullmatch(name))


def validate_name(name: str) -> str:
    """Return `name` unchanged, or raise 400 `Validation failed: Name is invalid`."""
    if not is_valid_name(name):
        raise ValidationFailed("Name is invalid")
    return name


def normalize_name(name: str) -> str:
    """PEP 503 normalised form: runs of `-`, `_`, `.` become one `-`, lower case."""
    return _NORMALISE_RE.sub("-", name).lower()
