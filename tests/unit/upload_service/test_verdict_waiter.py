"""The uploading replica awaits the replicas' answers itself (registry_shared.replicas.AnswerBook): an indexed
verdict is handed to the upload only once every replica it names has applied the file's `index.changed`,
whether the answers come before the verdict or after it; a silent replica is passed over after the bound."""
from __future__ import annotations

import asyncio

import pytest
import structlog

from registry_shared.events import DistributionIndexed, DistributionRejected, IndexApplied
from registry_shared.replicas import AnswerBook, Awaited
from upload_api.adapters.messaging import VerdictWaiter

pytestmark = pytest.mark.asyncio


def indexed(upload_id: str = "u1", awaited: tuple[str, ...] = ("ia-1", "web-1")) -> DistributionIndexed:
    return DistributionIndexed(file_id=1, project_id=5, filename="demo-1.0.tar.gz", upload_id=upload_id,
                               applied_id="change-1" if awaited else "", awaited=awaited)


async def settled(future: asyncio.Future) -> bool:
    """Whether `future` is done once every task ready to run has run."""
    for _ in range(5):
        await asyncio.sleep(0)
    return future.done()


async def test_answers_before_the_verdict_release_it_at_once() -> None:
    waiter = VerdictWaiter(applied_timeout=30)
    future = waiter.expect("u1")
    waiter.received(IndexApplied(message_id="change-1", replica="ia-1"))
    waiter.received(IndexApplied(message_id="change-1", replica="web-1"))
    waiter.received(indexed())
    assert await settled(future) and future.result() == indexed()


async def test_the_verdict_waits_for_the_last_replica() -> None:
    waiter = VerdictWaiter(applied_timeout=30)
    future = waiter.expect("u1")
    waiter.received(IndexApplied(message_id="change-1", replica="ia-1"))
    waiter.received(indexed())
    waiter.received(IndexApplied(message_id="other-change", replica="web-1"))  # another file's answer
    assert not await settled(future)
    waiter.received(IndexApplied(message_id="change-1", replica="web-1"))
    assert await settled(future) and isinstance(future.result(), DistributionIndexed)


async def test_a_silent_replica_is_passed_over_after_the_bound() -> None:
    waiter = VerdictWaiter(applied_timeout=0.05)
    future = waiter.expect("u1")
    with structlog.testing.capture_logs() as logs:
        waiter.received(indexed())
        verdict = await asyncio.wait_for(future, 5)
    assert verdict == indexed()
    [given_up] = [e for e in logs if e["event"] == "index_change_not_applied"]
    assert given_up["replicas"] == ["ia-1", "web-1"]


@pytest.mark.parametrize("verdict", [
    indexed(awaited=()),  # the worker awaited the replicas itself
    DistributionRejected(file_id=1, project_id=5, filename="demo-1.0.tar.gz", reason="bad", upload_id="u1"),
])
async def test_a_verdict_naming_no_replicas_is_handed_over_at_once(verdict) -> None:
    waiter = VerdictWaiter(applied_timeout=30)
    future = waiter.expect("u1")
    waiter.received(verdict)
    assert future.done() and future.result() == verdict


async def test_answers_nobody_awaits_are_kept_only_for_the_most_recent_announcements() -> None:
    book = AnswerBook(max_waits=2)
    for change in ("a", "b", "c"):
        book.answered(IndexApplied(message_id=change, replica="ia-1"))
    assert list(book._waits) == ["b", "c"]
    # "c"'s answer is remembered, "a"'s was dropped: waiting for "a" would take the whole bound.
    assert await book.wait(Awaited("c", ("ia-1",)), bound_s=30) == []
    assert await book.wait(Awaited("a", ("ia-1",)), bound_s=0.01) == ["ia-1"]
    assert book._waits.keys() == {"b"}
