"""Which scopes forward unknown names upstream (SPEC §1 Forwarding), as a pure cascade."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ForwardingSetting:
    """One level's explicit setting (None = inherit) and whether it is locked for descendants."""

    value: bool | None
    locked: bool = False


def resolve_forwarding(chain: Sequence[ForwardingSetting], instance_default: bool) -> bool:
    """The effective setting of the last element of `chain` (root group first, the scope itself last).

    A locked level forces its value on everything below it, and the lock nearest the root wins, so a
    subgroup cannot unlock what its parent locked. Without a lock, the nearest explicit value wins, then
    the instance setting.
    """
    for depth, level in enumerate(chain):
        if level.locked:
            if level.value is not None:
                return level.value
            return _nearest(chain[:depth], instance_default)
    return _nearest(chain, instance_default)


def _nearest(chain: Sequence[ForwardingSetting], default: bool) -> bool:
    for level in reversed(chain):
        if level.value is not None:
            return level.value
    return default


def setting_of(doc: Mapping[str, Any]) -> ForwardingSetting:
    """A group's or project's document as a level of the cascade (projects cannot lock)."""
    value = doc.get("forwarding")
    return ForwardingSetting(None if value is None else bool(value), bool(doc.get("forwarding_locked")))


def forwarding_chain(ancestors: Sequence[Mapping[str, Any]], ancestor_ids: Sequence[int],
                     scope_doc: Mapping[str, Any]) -> list[ForwardingSetting]:
    """The cascade for a scope: its ancestor groups ordered root first (as `ancestor_ids`), then itself."""
    by_id = {doc["_id"]: doc for doc in ancestors}
    levels = [setting_of(by_id[i]) for i in ancestor_ids if i in by_id]
    return [*levels, setting_of(scope_doc)]
