"""The governance queues' consumers (SPEC §10), each on its own durable queue (registry_shared.topology):
`<exchange>.audit`, `<exchange>.webhooks` and `<exchange>.downloads`. A handler table per queue maps the
event type to its use case; an unreadable message is dead-lettered; a failure is retried through the
queue's delay queues (`<queue>.retry.<s>`, backoff doubling from the first delay) until the retry window
has passed, then dead-lettered. Each message runs in its own task, so a slow hook holds up nothing else.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from registry_shared.events import Event, parse_event
from registry_shared.logging import bind_correlation_id

from .adapters.messaging import WorkerPublisher, first_failure_of, retries_of
from .retries import RetryPolicy

log = structlog.get_logger()

# (event, AMQP message_id, correlation id) -> outcome
Handler = Callable[[Any, str, str | None], Awaitable[str]]
Observer = Callable[[str, str], None]


class QueueConsumer:
    def __init__(self, name: str, handlers: dict[type[Event], Handler], publisher: WorkerPublisher,
                 retry: RetryPolicy) -> None:
        self.name = name
        self.handlers = handlers
        self.publisher = publisher
        self.retry = retry
        self.observers: list[Observer] = []  # (event kind, outcome); tests await outcomes through it
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self._tag = await queue.consume(self.process)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)

    async def process(self, message: AbstractIncomingMessage) -> None:
        bind_correlation_id(message.correlation_id)
        structlog.contextvars.bind_contextvars(message_id=message.message_id)
        try:
            event = parse_event(message.type, message.body)
            handler = self.handlers.get(type(event))
            if handler is None:
                raise ValueError(f"no handler for {message.type!r}")
        except (ValueError, ValidationError) as exc:
            log.warning("message_poisoned", consumer=self.name, message_type=str(message.type)[:100],
                        error=str(exc)[:300])
            await _settle(message.reject(requeue=False))
            self._record(str(message.type), "poisoned")
            return
        try:
            outcome = await handler(event, message.message_id or "", message.correlation_id)
        except Exception as exc:  # noqa: BLE001 - retried with backoff, then dead-lettered
            await self._retry(message, event, exc)
            return
        await _settle(message.ack())
        self._record(event.kind, outcome)

    async def _retry(self, message: AbstractIncomingMessage, event: Event, exc: Exception) -> None:
        retries, now = retries_of(message), time.time_ns() // 1_000_000
        first = first_failure_of(message, now)
        error = {"error": type(exc).__name__, "detail": str(exc)[:300], "retries": retries}
        if self.retry.exhausted(first, now):
            log.error("message_dead_lettered", consumer=self.name, message_type=event.kind, **error)
            await _settle(message.reject(requeue=False))
            self._record(event.kind, "dead_lettered")
            return
        delay_ms = self.retry.delay_ms(retries)
        log.warning("message_failed", consumer=self.name, message_type=event.kind, retry_in=delay_ms / 1000, **error)
        try:
            await self.publisher.retry_later(message, retries + 1, first, delay_ms)
        except Exception as publish_exc:  # noqa: BLE001 - left unacked, the broker redelivers it
            log.error("message_retry_failed", consumer=self.name, error=type(publish_exc).__name__)
            await _settle(message.nack(requeue=True))
            return
        await _settle(message.ack())
        self._record(event.kind, "retried")

    def _record(self, kind: str, outcome: str) -> None:
        for observer in self.observers:
            observer(kind, outcome)


async def _settle(action: Awaitable[Any]) -> None:
    try:
        await action
    except Exception as exc:  # noqa: BLE001 - the channel is gone: the broker requeues the message
        log.warning("message_settle_failed", error=type(exc).__name__)
