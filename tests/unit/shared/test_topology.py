"""The AMQP names are a contract (docs/contracts.md, the Helm chart's operators, dlq_replay.py): pinned here
as they are spelled, and every consumer's bindings checked against the one declaration."""
from __future__ import annotations

import pytest

from metadata_worker.handlers import BINDINGS as WORKER_HANDLED
from registry_shared import topology
from registry_shared.events import EVENT_TYPES


@pytest.mark.parametrize(("name", "expected"), [
    (topology.worker_queue("registry"), "registry.metadata-worker"),
    (topology.dead_letter_queue(topology.worker_queue("registry")), "registry.metadata-worker.dead"),
    (topology.dead_letter_exchange("registry"), "registry.dlx"),
    (topology.worker_queue("test-ab12"), "test-ab12.metadata-worker"),
    (topology.verdict_key("distribution.indexed", "r1"), "distribution.indexed.r1"),
    (topology.verdict_key("distribution.rejected", ""), "distribution.rejected"),
])
def test_names_as_documented(name: str, expected: str) -> None:
    assert name == expected


@pytest.mark.parametrize(("delay_ms", "name"), [(200, "q.retry.0.2"), (1000, "q.retry.1"), (1600, "q.retry.1.6"),
                                                (300_000, "q.retry.300"), (1_234_567, "q.retry.1234.567")])
def test_retry_queue_names_are_exact_to_the_millisecond(delay_ms: int, name: str) -> None:
    assert topology.retry_queue("q", delay_ms) == name


def test_verdict_bindings_name_every_verdict_for_one_replica() -> None:
    assert topology.verdict_bindings("r1") == ("distribution.indexed.r1", "distribution.rejected.r1")


def test_every_binding_is_an_event_kind() -> None:
    bindings = {*topology.WORKER_BINDINGS, *topology.INDEX_REPLICA_BINDINGS, *topology.CREDENTIAL_BINDINGS,
                *topology.VERDICT_KINDS}
    assert bindings <= EVENT_TYPES.keys()


def test_the_worker_handles_exactly_what_its_queue_is_bound_to() -> None:
    # upload-api declares the worker's queue too (so an upload before any worker started is kept): both
    # must bind what the worker handles, or a message would sit unhandled or never arrive.
    assert set(WORKER_HANDLED) == set(topology.WORKER_BINDINGS)
