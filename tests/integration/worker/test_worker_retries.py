"""Transient failures against the real RabbitMQ: delay queues, the retry window, and giving up.

An outage is played through the worker's own ports: the object store's reads fail with the
`ObjectReadError` the S3 readers raise when the server does not answer (the session's SeaweedFS is
shared, so it is not stopped here). Nothing sleeps: every step waits on an observed outcome.
"""
from __future__ import annotations

import os
import time
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage
from structlog.testing import capture_logs

from metadata_worker.adapters.messaging import FIRST_FAILURE_HEADER, RETRIES_HEADER
from metadata_worker.adapters.readers import ObjectReadError
from metadata_worker.app import CONSUMER
from registry_shared.events import DistributionIndexed
from registry_shared.topology import retry_queue
from tests.unit.worker.worker_archives import sdist_entries, tar_gz_of, wheel

WHEEL = "demo_pkg-1.0-py3-none-any.whl"


class OutageDistributions:
    """The worker's Distributions port over the real one, with reads of some objects failing as in an outage.

    `failures[key]` is how many more inspections of `key` fail (-1: all of them); `on_inspect` runs before
    each inspection, so a test can look at the broker at that very moment."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.failures: dict[str, int] = {}
        self.deletes_fail = False
        self.attempts: list[tuple[str, float, bool]] = []
        self.on_inspect: dict[str, Any] = {}

    async def inspect(self, object_key, filename, expected):
        if object_key in self.on_inspect:
            await self.on_inspect.pop(object_key)()
        left = self.failures.get(object_key, 0)
        self.attempts.append((object_key, time.monotonic(), left == 0))
        if left:
            self.failures[object_key] = left - 1 if left > 0 else left
            raise ObjectReadError("ranged read failed: MaxRetryError")
        return await self.inner.inspect(object_key, filename, expected)

    async def delete(self, key: str) -> None:
        if self.deletes_fail:
            raise ObjectReadError("delete failed: MaxRetryError")
        await self.inner.delete(key)


def outage(worker) -> OutageDistributions:
    service = worker.app[CONSUMER].service
    service.distributions = OutageDistributions(service.distributions)
    return service.distributions


def record_deliveries(worker) -> list[AbstractIncomingMessage]:
    """Every message the consumer takes, in order (its `process` wrapped)."""
    consumer = worker.app[CONSUMER]
    deliveries: list[AbstractIncomingMessage] = []
    process = consumer.process

    async def recording(message: AbstractIncomingMessage) -> None:
        deliveries.append(message)
        await process(message)

    consumer.process = recording
    return deliveries


@pytest.mark.parametrize("worker_overrides", [{"worker_prefetch": 1, "worker_retry_delay": 1.0,
                                               "worker_retry_delay_max": 1.0, "worker_retry_window": 60}])
async def test_a_failed_message_waits_in_a_delay_queue_while_others_are_processed(worker) -> None:
    dists, deliveries = outage(worker), record_deliveries(worker)
    project = await worker.project()
    failing = await worker.store_distribution(project["_id"], WHEEL, wheel())
    other = await worker.store_distribution(project["_id"], "demo_pkg-2.0-py3-none-any.whl", wheel(version="2.0"))
    dists.failures[failing.object_key] = 1  # S3 fails the first inspection only
    delay_queue = retry_queue(worker.work_queue, 1000)
    waiting: list[int] = []

    async def count_waiting() -> None:
        queue = await worker.broker.channel.declare_queue(delay_queue, passive=True)
        waiting.append(queue.declaration_result.message_count)

    dists.on_inspect[other.object_key] = count_waiting
    await worker.publish(failing, "corr-failing")
    await worker.publish(other, "corr-other")

    # One message in hand at a time (prefetch 1): the other one could only be inspected because the
    # failed one was not held by a sleeping handler but parked in the delay queue.
    assert await worker.next_outcome("distribution.stored") == "retried"
    assert (await worker.next_event(DistributionIndexed.kind)).event.file_id == other.file_id
    assert waiting == [1]
    indexed = await worker.next_event(DistributionIndexed.kind)
    assert indexed.event.file_id == failing.file_id and indexed.correlation_id == "corr-failing"
    assert (await worker.packages.get_file(failing.file_id)).state == "installable"

    [(key1, t1, ok1), (key2, _t2, ok2), (key3, t3, ok3)] = dists.attempts
    assert (key1, ok1, key2, ok2, key3, ok3) == (failing.object_key, False, other.object_key, True,
                                                 failing.object_key, True)
    assert t3 - t1 >= 0.95  # it came back after the delay queue's TTL, not at once
    first, _, again = deliveries
    assert (again.message_id, again.correlation_id, again.type) == (first.message_id, "corr-failing",
                                                                     "distribution.stored")
    assert again.headers[RETRIES_HEADER] == 1
    assert again.headers[FIRST_FAILURE_HEADER] <= time.time() * 1000
    assert [death["queue"] for death in again.headers["x-death"]] == [delay_queue]


async def test_a_message_failing_past_the_window_is_dead_lettered_and_frees_its_filename(worker) -> None:
    dists = outage(worker)
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel())
    dists.failures[event.object_key] = -1  # S3 stays down
    await worker.publish(event, "corr-down")

    retried = 0
    while (outcome := await worker.next_outcome("distribution.stored")) == "retried":
        retried += 1
    assert outcome == "dead_lettered"
    dead = await worker.next_dead_letter()
    first_failure = dead.headers[FIRST_FAILURE_HEADER]
    assert time.time() * 1000 - first_failure >= 1000  # the 1 s window had passed
    assert dead.headers[RETRIES_HEADER] == retried >= 2  # every 0.2 s until then
    assert (dead.correlation_id, dead.type) == ("corr-down", "distribution.stored")
    # The broker's history is that of the last trip only: the count lives in x-retries, nothing piles up.
    assert sorted((d["queue"], d["reason"], d["count"]) for d in dead.headers["x-death"]) == [
        (worker.work_queue, "rejected", 1),
        (retry_queue(worker.work_queue, 200), "expired", 1)]

    # The upload that will never be indexed no longer holds its filename, nor its bytes.
    assert await worker.packages.get_file(event.file_id) is None
    assert await worker.store.size(event.object_key) is None
    again = await worker.store_distribution(project["_id"], WHEEL, wheel())
    assert again.file_id != event.file_id


async def test_giving_up_is_best_effort(worker) -> None:
    dists = outage(worker)
    dists.deletes_fail = True
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel())
    dists.failures[event.object_key] = -1
    with capture_logs() as logs:
        await worker.publish(event, "corr-down")
        while await worker.next_outcome("distribution.stored") == "retried":
            pass
        dead = await worker.next_dead_letter()
    assert dead.correlation_id == "corr-down"
    [failed] = [line for line in logs if line["event"] == "message_give_up_failed"]
    assert failed["error"] == "ObjectReadError" and failed["log_level"] == "error"
    # The reservation went first, so the filename is free even though the object could not be removed.
    assert await worker.packages.get_file(event.file_id) is None
    assert await worker.store.size(event.object_key) is not None


async def test_a_read_failing_after_pkg_info_is_retried_not_rejected(worker) -> None:
    """A `.tar.gz` is read to its end: a stream cut after PKG-INFO is an outage, not a bad archive."""
    service = worker.app[CONSUMER].service
    store = service.distributions.store
    project = await worker.project()
    data = tar_gz_of([*sdist_entries(), ("demo_pkg-1.0/bulk.bin", os.urandom(600_000))])
    event = await worker.store_distribution(project["_id"], "demo_pkg-1.0.tar.gz", data)
    cuts: list[str] = []

    class CutStream:
        """The real store, its stream cut after the first chunk once (a connection reset)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def stream(self, key: str):
            chunks = store.stream(key)

            async def cut():
                async for chunk in chunks:
                    yield chunk
                    if not cuts:
                        cuts.append(key)
                        raise ConnectionResetError("connection reset by peer")
            return cut()

    service.distributions.store = CutStream()
    await worker.publish(event, "corr-cut")
    assert await worker.next_outcome("distribution.stored") == "retried"
    assert cuts == [event.object_key]
    assert await worker.next_outcome("distribution.stored") == "indexed"
    assert (await worker.packages.get_file(event.file_id)).state == "installable"
