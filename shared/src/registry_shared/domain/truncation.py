"""GitLab's metadata length limits: an over-long value keeps max-3 characters followed by `...`."""
from __future__ import annotations

from collections.abc import Mapping

LIMITS: Mapping[str, int] = {
    "requires_python": 255,
    "keywords": 1024,
    "metadata_version": 16,
    "author_email": 2048,
    "summary": 255,
    "description": 4000,
    "description_content_type": 128,
}


def truncate(value: str, limit: int) -> str:
    """Return `value` if it fits in `limit` characters, else its first limit-3 characters + `...`."""
    if len(value) <= limit:
        return value
    return value[: limit - 3] + "..."


def truncate_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """Apply every limit in LIMITS to the string fields present; other fields and values pass unchanged."""
    out: dict[str, object] = {}
    for key, value in fields.items():
        limit = LIMITS.get(key)
        out[key] = truncate(value, limit) if (limit and isinstance(value, str)) else value
    return out
