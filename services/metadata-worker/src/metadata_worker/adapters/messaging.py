"""Publishing from the worker: events through the shared Broker, and retries of a message as it came.

A retry must keep the message's identity (`message_id`, `correlation_id`, `type`), which
`Broker.publish` does not (it stamps a fresh message id), so it goes through the channel here. It is
sent through the default exchange to one of the work queue's delay queues (retries.py), which hands it
back to the work queue once its delay has passed: other queues bound to the event's routing key must
not see it twice.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.adapters.amqp import Broker
from registry_shared.events import Event
from registry_shared.replicas import Announcer, Awaited
from registry_shared.topology import retry_queue

RETRIES_HEADER = "x-retries"
# Epoch milliseconds of the message's first transient failure: the retry window runs from there.
FIRST_FAILURE_HEADER = "x-first-failure-ms"
# The broker's record of the last trip through a delay queue; not copied, so it cannot pile up over a retry
# window (x-retries and x-first-failure-ms say what matters).
_DEATH_HEADERS = frozenset({"x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                            "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"})


class WorkerPublisher:
    def __init__(self, broker: Broker, queue_name: str, announcer: Announcer | None = None) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.announcer = announcer

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None:
        """Persistent, publisher-confirmed; raises if the broker refuses. An `index.changed` returns once
        every live index-api replica applied it (registry_shared.replicas), so the verdict after it is true."""
        if self.announcer is not None:
            await self.announcer.publish(event, correlation_id, routing_key)
        else:
            await self.broker.publish(event, correlation_id, routing_key)

    async def announce_to(self, event: Event, correlation_id: str | None, answers_to: str) -> Awaited:
        """Publish `event` with the replicas' answers addressed to `answers_to` (the uploading replica's
        queue), without waiting for them; whom that replica must wait for."""
        if self.announcer is None:
            await self.broker.publish(event, correlation_id)
            return Awaited()
        return await self.announcer.publish_for(event, correlation_id, answers_to)

    async def declare_retry_queues(self, delays_ms: Iterable[int]) -> list[str]:
        """One durable delay queue per delay: messages expire after it and go back to the work queue
        (through the default exchange). Idempotent: the arguments follow from the name."""
        names = []
        for delay_ms in delays_ms:
            name = retry_queue(self.queue_name, delay_ms)
            await self.broker.channel.declare_queue(name, durable=True, arguments={
                "x-message-ttl": delay_ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.queue_name})
            names.append(name)
        return names

    async def retry_later(self, message: AbstractIncomingMessage, retries: int, first_failure_ms: int,
                          delay_ms: int) -> None:
        """Queue `message` again, `delay_ms` from now (0: straight to the work queue), with `x-retries` =
        `retries` and the time of its first failure; confirmed by the broker."""
        kept = {name: value for name, value in (message.headers or {}).items() if name not in _DEATH_HEADERS}
        headers: dict[str, Any] = {**kept, RETRIES_HEADER: retries, FIRST_FAILURE_HEADER: first_failure_ms}
        copy = aio_pika.Message(
            body=message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
        )
        routing_key = retry_queue(self.queue_name, delay_ms) if delay_ms > 0 else self.queue_name
        await self.broker.channel.default_exchange.publish(copy, routing_key=routing_key, timeout=10)


def retries_of(message: AbstractIncomingMessage) -> int:
    """How many times this message was already retried (a missing or garbled header counts as 0)."""
    return _int_header(message, RETRIES_HEADER, 0)


def first_failure_of(message: AbstractIncomingMessage, now_ms: int) -> int:
    """When this message first failed (epoch ms): its header, or `now_ms` for a first failure. A value in
    the future (a garbled header, a skewed clock) counts as now, so it cannot stretch the window."""
    return min(_int_header(message, FIRST_FAILURE_HEADER, now_ms), now_ms)


def _int_header(message: AbstractIncomingMessage, name: str, default: int) -> int:
    try:
        return max(int((message.headers or {}).get(name, default)), 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
