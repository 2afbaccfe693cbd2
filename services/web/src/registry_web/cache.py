"""The package pages every visitor sees alike, kept in memory until an `index.changed` names their project
and package (uploads, deletes, and whatever else changes a name's files), or `ttl` seconds pass should an
event be missed (the broker was away: then everything is dropped, consumers.py)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class PackagePages(Generic[V]):
    def __init__(self, ttl: float = 300.0, max_entries: int = 2000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # (project id, package id) -> (expiry, normalised name, value)
        self._entries: dict[tuple[int, int], tuple[float, str, V]] = {}

    def get(self, project_id: int, package_id: int) -> V | None:
        found = self._entries.get((project_id, package_id))
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._entries[(project_id, package_id)]
            return None
        return found[2]

    def put(self, project_id: int, package_id: int, name: str, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest insertion
        self._entries[(project_id, package_id)] = (self._clock() + self.ttl, name, value)

    def invalidate(self, project_ids: set[int], names: set[str]) -> int:
        """Drop the pages of `names` (every name when empty) in these projects; how many were dropped."""
        stale = [key for key, (_, name, _) in self._entries.items()
                 if key[0] in project_ids and (not names or name in names)]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def clear(self) -> int:
        dropped = len(self._entries)
        self._entries.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._entries)
