"""deploy/k8s/tools/dlq_replay.py against the real RabbitMQ, run the way docs/operations.md says:
`python - [args] < dlq_replay.py` with the services' environment.

The queues are declared by the shared Broker exactly as metadata-worker declares them; messages reach
the dead-letter queue by being rejected, as the worker rejects poison.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from registry_shared.adapters.amqp import Broker
from registry_shared.events import DistributionStored, FileDeleted
from registry_shared.topology import WORKER_BINDINGS, dead_letter_exchange, dead_letter_queue, worker_queue
from tests.support.servers import DEFAULT_AMQP_URL, launcher

from .conftest import REPO

SCRIPT = REPO / "deploy" / "k8s" / "tools" / "dlq_replay.py"


@pytest.fixture(scope="module")
def amqp_url() -> str:
    url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    launcher.ensure_rabbitmq(url, time.monotonic() + 60)
    return url


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    broker = Broker(amqp_url, f"test-dlq-{uuid.uuid4().hex[:12]}")
    await broker.connect()
    work = await broker.declare_work_queue(worker_queue(broker.exchange_name), WORKER_BINDINGS, prefetch=10)
    try:
        yield broker
    finally:
        await work.delete(if_unused=False, if_empty=False)
        await broker.channel.queue_delete(dead_letter_queue(worker_queue(broker.exchange_name)))
        await broker.channel.exchange_delete(dead_letter_exchange(broker.exchange_name))
        await broker.channel.exchange_delete(broker.exchange_name)
        await broker.close()


async def dead_letter(broker: Broker, kind: str, body: bytes, correlation_id: str) -> str:
    """Publish to the work queue and reject it there, as the worker rejects poison; returns the message id."""
    queue_name = worker_queue(broker.exchange_name)
    message_id = uuid.uuid4().hex
    await broker.exchange.publish(
        aio_pika.Message(body=body, type=kind, message_id=message_id, correlation_id=correlation_id,
                         content_type="application/json", headers={"x-retries": 3, "x-first-failure-ms": 1},
                         delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=kind)
    queue = await broker.channel.declare_queue(queue_name, passive=True)
    received = await queue.get(timeout=10)
    assert received.message_id == message_id
    await received.reject(requeue=False)
    return message_id


async def count(broker: Broker, name: str) -> int:
    queue = await broker.channel.declare_queue(name, passive=True)
    return (await queue.declare()).message_count


async def run_script(amqp_url: str, exchange: str, *args: str) -> dict:
    def run() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "AMQP_URL": amqp_url, "AMQP_EXCHANGE": exchange}
        return subprocess.run([sys.executable, "-", *args], input=SCRIPT.read_text(), env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    result = await asyncio.to_thread(run)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def wait_for_count(broker: Broker, name: str, expected: int) -> None:
    """Dead-lettering is asynchronous in the broker: poll under a deadline."""
    deadline = time.monotonic() + 10
    while await count(broker, name) != expected:
        assert time.monotonic() < deadline, f"{name} never held {expected} messages"
        await asyncio.sleep(0.05)


async def test_replay_moves_dead_letters_back_to_the_work_queue(broker: Broker, amqp_url: str) -> None:
    exchange = broker.exchange_name
    work = worker_queue(exchange)
    dead = dead_letter_queue(work)
    stored = await dead_letter(broker, DistributionStored.kind, b'{"kind": "distribution.stored"}', "corr-stored-1")
    deleted = await dead_letter(broker, FileDeleted.kind, b'{"kind": "file.deleted"}', "corr-deleted-1")
    await wait_for_count(broker, dead, 2)

    listed = await run_script(amqp_url, exchange, "--dry-run")
    assert listed["replayed"] == 0 and listed["left"] == 2 and listed["dead_letter_queue"] == dead
    assert [m["message_id"] for m in listed["messages"]] == [stored, deleted]
    assert listed["messages"][0]["reason"] == "rejected"
    assert await count(broker, work) == 0

    result = await run_script(amqp_url, exchange)
    assert result["replayed"] == 2 and result["left"] == 0
    assert await count(broker, dead) == 0
    queue = await broker.channel.declare_queue(work, passive=True)
    replayed = [await queue.get(timeout=10) for _ in range(2)]
    assert [(m.message_id, m.type, m.correlation_id, m.body) for m in replayed] == [
        (stored, "distribution.stored", "corr-stored-1", b'{"kind": "distribution.stored"}'),
        (deleted, "file.deleted", "corr-deleted-1", b'{"kind": "file.deleted"}'),
    ]
    for message in replayed:
        assert not {"x-death", "x-retries", "x-first-failure-ms"} & message.headers.keys()
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        await message.ack()


async def test_replay_stops_at_the_limit(broker: Broker, amqp_url: str) -> None:
    exchange = broker.exchange_name
    dead = dead_letter_queue(worker_queue(exchange))
    for n in range(3):
        await dead_letter(broker, DistributionStored.kind, b"{}", f"corr-{n}")
    await wait_for_count(broker, dead, 3)
    result = await run_script(amqp_url, exchange, "--limit", "2")
    assert result["replayed"] == 2 and result["left"] == 1
    assert await count(broker, worker_queue(exchange)) == 2


async def test_replay_refuses_an_unknown_exchange(amqp_url: str) -> None:
    env = {**os.environ, "AMQP_URL": amqp_url, "AMQP_EXCHANGE": f"missing-{uuid.uuid4().hex[:8]}"}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-"], input=SCRIPT.read_text(), env=env,
                                     capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "NOT_FOUND" in result.stderr  # passive declare: it never creates a queue
