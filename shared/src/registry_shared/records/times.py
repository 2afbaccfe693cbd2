"""Stored times as aware datetimes: nx-27017 hands back a datetime written by `$set` as an ISO string."""
from __future__ import annotations

from datetime import UTC, datetime


def stored_time(value: object) -> datetime | None:
    """A stored time (datetime or ISO 8601 text) in UTC; None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None
