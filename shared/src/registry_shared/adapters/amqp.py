"""RabbitMQ through aio-pika: a durable topic exchange, persistent messages, publisher confirms,
manual acks, and dead-letter queues.

Routing keys are event kinds (`distribution.stored`); a verdict addressed to one upload-api replica
carries the replica's id as a suffix (`distribution.indexed.<replica>`).
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from ..events import Event
from ..logging import current_correlation_id
from ..topology import dead_letter_exchange, dead_letter_queue


class Broker:
    def __init__(self, url: str, exchange_name: str) -> None:
        self.url = url
        self.exchange_name = exchange_name
        self.connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        self.connection = await aio_pika.connect_robust(self.url, timeout=10)
        self._channel = await self.connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    @property
    def channel(self) -> AbstractChannel:
        """The publisher-confirmed channel; only after `connect`."""
        if self._channel is None:
            raise RuntimeError("Broker.connect() has not run")
        return self._channel

    @property
    def exchange(self) -> AbstractExchange:
        """The topic exchange every event is published to; only after `connect`."""
        if self._exchange is None:
            raise RuntimeError("Broker.connect() has not run")
        return self._exchange

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None,
                      headers: dict[str, Any] | None = None, *, message_id: str | None = None,
                      reply_to: str | None = None) -> None:
        """Publish persistently and wait for the broker's confirm; raises if the broker refuses.

        Every event carries a correlation id: the caller's, else the one bound to the current task or
        process, so the consumers' log lines of it can be joined to the publisher's."""
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id or uuid.uuid4().hex,
            reply_to=reply_to,
            correlation_id=correlation_id or current_correlation_id(),
            type=event.kind,
            headers=headers or {},
        )
        await self.exchange.publish(message, routing_key=routing_key or event.kind, timeout=10)

    async def declare_work_queue(self, name: str, bindings: Sequence[str], prefetch: int) -> AbstractQueue:
        """A durable queue with a dead-letter queue `<name>.dead` behind it (registry_shared.topology)."""
        dlx_name = dead_letter_exchange(self.exchange_name)
        dlx = await self.channel.declare_exchange(dlx_name, aio_pika.ExchangeType.DIRECT, durable=True)
        dead = await self.channel.declare_queue(dead_letter_queue(name), durable=True)
        await dead.bind(dlx, routing_key=name)
        await self.channel.set_qos(prefetch_count=prefetch)
        queue = await self.channel.declare_queue(
            name, durable=True, arguments={"x-dead-letter-exchange": dlx_name, "x-dead-letter-routing-key": name}
        )
        for key in bindings:
            await queue.bind(self.exchange, routing_key=key)
        return queue

    async def declare_private_queue(self, bindings: Sequence[str]) -> AbstractQueue:
        """An exclusive, auto-deleted queue for one process (cache invalidation, verdicts)."""
        queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        for key in bindings:
            await queue.bind(self.exchange, routing_key=key)
        return queue

    async def consume(self, queue: AbstractQueue,
                      callback: Callable[[AbstractIncomingMessage], Awaitable[None]]) -> str:
        return await queue.consume(callback)

    async def ping(self) -> bool:
        return self.connected
