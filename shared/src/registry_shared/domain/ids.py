"""Numeric ids as the API takes them in paths (`/projects/:id`, `/packages/:package_id`)."""
from __future__ import annotations

MAX_ID = 2**63 - 1  # ids are stored as MongoDB int64


def is_numeric(text: str) -> bool:
    """Whether `text` is written as an id (ASCII digits only), whatever its size."""
    return text.isascii() and text.isdigit()


def parse_id(text: str) -> int | None:
    """The id `text` names, or None when it is not ASCII digits or past any id that can exist (such an
    id names nothing: the caller answers 404 or 400, never asks the database)."""
    if not is_numeric(text) or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
