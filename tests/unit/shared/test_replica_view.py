"""ReplicaView: what it says is live as joins, leaves and reads of the heartbeats arrive in any order."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from registry_shared.events import ReplicaJoined, ReplicaLeft
from registry_shared.replicas import STALE_S, ReplicaView


class Heartbeats:
    """The `replicas` collection as a ReplicaRegistry reads it, set by the test."""

    stale_s = STALE_S

    def __init__(self) -> None:
        self.beats: dict[str, tuple[str, datetime]] = {}

    async def seen(self, roles: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        since = datetime.now(UTC) - timedelta(seconds=self.stale_s)
        return {r: beat for r, beat in self.beats.items() if beat[0] in set(roles) and beat[1] > since}


def view_of(beats: Heartbeats) -> ReplicaView:
    return ReplicaView(beats)  # type: ignore[arg-type]  # the one method it reads


async def test_replicas_come_from_reads_and_from_what_they_say() -> None:
    beats = Heartbeats()
    beats.beats["a"] = ("index-api", datetime.now(UTC))
    view = view_of(beats)
    await view.refresh()
    view.apply(ReplicaJoined(replica="w", role="web"))
    assert view.live(["index-api", "web"]) == {"a", "w"}
    assert view.live(["index-api"]) == {"a"} and view.live(["upload-api"]) == set()


async def test_a_read_from_before_a_join_does_not_drop_the_joined_replica() -> None:
    beats = Heartbeats()
    view = view_of(beats)
    view.apply(ReplicaJoined(replica="new", role="index-api"))
    await view.refresh()  # read before its first beat was written
    assert view.live(["index-api"]) == {"new"}


async def test_a_read_still_holding_the_last_beat_of_a_replica_that_left_does_not_bring_it_back() -> None:
    beats = Heartbeats()
    beats.beats["old"] = ("index-api", datetime.now(UTC))
    view = view_of(beats)
    await view.refresh()
    view.apply(ReplicaLeft(replica="old", role="index-api"))
    await view.refresh()  # read before its registration was removed
    assert view.live(["index-api"]) == set()
    beats.beats["old"] = ("index-api", datetime.now(UTC) + timedelta(seconds=1))  # the same id beating again
    await view.refresh()
    assert view.live(["index-api"]) == {"old"}


async def test_a_replica_that_stopped_beating_is_dropped_after_stale_s() -> None:
    beats = Heartbeats()
    beats.beats["crashed"] = ("web", datetime.now(UTC) - timedelta(seconds=STALE_S - 0.5))
    view = view_of(beats)
    await view.refresh()
    assert view.live(["web"]) == {"crashed"}
    long_ago = ("web", datetime.now(UTC) - timedelta(seconds=STALE_S + 1))  # time passed, no beat since
    beats.beats["crashed"] = view._seen["crashed"] = long_ago
    assert view.live(["web"]) == set()
    await view.refresh()
    assert "crashed" not in view._seen  # forgotten, not kept forever
