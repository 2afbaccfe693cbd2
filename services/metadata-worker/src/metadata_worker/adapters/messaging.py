"""Publishing from the worker: events through the shared Broker, and retries of a message as it came.

A retry must keep the message's identity (`message_id`, `correlation_id`, `type`), which
`Broker.publish` does not (it stamps a fresh message id), so it goes through the channel here. It is
sent through the default exchange straight to the work queue: other queues bound to the event's
routing key must not see it twice.
"""
from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.adapters.amqp import Broker
from registry_shared.events import Event
from registry_shared.replicas import Announcer

RETRIES_HEADER = "x-retries"


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

    async def republish(self, message: AbstractIncomingMessage, retries: int) -> None:
        """Queue `message` again on the work queue with `x-retries` = `retries`; confirmed."""
        headers: dict[str, Any] = {**(message.headers or {}), RETRIES_HEADER: retries}
        copy = aio_pika.Message(
            body=message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
        )
        await self.broker.channel.default_exchange.publish(copy, routing_key=self.queue_name, timeout=10)


def retries_of(message: AbstractIncomingMessage) -> int:
    """How many times this message was already retried (a missing or garbled header counts as 0)."""
    try:
        return max(int((message.headers or {}).get(RETRIES_HEADER, 0)), 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
