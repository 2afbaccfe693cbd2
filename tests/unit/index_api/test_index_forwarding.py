"""The forwarding cascade (index_api.forwarding): project, nearest group, locks from the top, instance."""
from __future__ import annotations

import pytest

from index_api.forwarding import ForwardingSetting as S
from index_api.forwarding import forwarding_chain, resolve_forwarding


@pytest.mark.parametrize(("chain", "instance", "expected"), [
    ([S(None)], True, True),  # nothing explicit: the instance
    ([S(None)], False, False),
    ([S(None), S(None), S(True)], False, True),  # the scope's own value
    ([S(False), S(None), S(None)], True, False),  # the nearest explicit ancestor
    ([S(False), S(True), S(None)], False, True),  # nearer wins over farther
    ([S(False, locked=True), S(None), S(True)], True, False),  # a lock overrides the project
    ([S(False, locked=True), S(True, locked=True), S(True)], True, False),  # the topmost lock wins
    ([S(None), S(True, locked=True), S(False)], False, True),  # a lock lower down still forces
    ([S(False), S(None, locked=True), S(True)], True, False),  # a lock without value forces what it inherits
    ([S(None, locked=True), S(False)], True, True),
    ([], False, False),
])
def test_resolve_forwarding(chain: list[S], instance: bool, expected: bool) -> None:
    assert resolve_forwarding(chain, instance) is expected


def test_chain_orders_ancestors_root_first_and_skips_missing() -> None:
    groups = [{"_id": 7, "forwarding": False}, {"_id": 3, "forwarding": True, "forwarding_locked": True}]
    chain = forwarding_chain(groups, [3, 5, 7], {"_id": 9, "forwarding": None})  # group 5 is gone
    assert chain == [S(True, locked=True), S(False), S(None)]


def test_project_value_applies_without_locks() -> None:
    chain = forwarding_chain([{"_id": 1, "forwarding": False}], [1], {"_id": 2, "forwarding": True})
    assert resolve_forwarding(chain, False) is True
