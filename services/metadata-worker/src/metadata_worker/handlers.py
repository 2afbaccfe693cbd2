"""The AMQP edge: one message in, one use case run, exactly one of ack / retry / dead-letter out.

- unparseable body or unknown type: rejected without requeue (to the dead-letter queue);
- the use case succeeded (indexed, rejected, skipped, deleted): acked;
- anything else is transient (S3 or MongoDB down): a copy is queued on a delay queue with `x-retries` + 1
  and the time of the first failure, and the original acked, so the handler never sleeps and other
  messages go on (retries.py); once the retry window since the first failure has passed, the message is
  dead-lettered instead, after its give-up action (a stored distribution frees its filename).
Each message runs in its own task (aio-pika), with its correlation id bound into every log line.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from registry_shared.events import DistributionStored, Event, FileDeleted, parse_event
from registry_shared.logging import bind_correlation_id

from .adapters.messaging import WorkerPublisher, first_failure_of, retries_of
from .metrics import MESSAGES, PROCESSING_SECONDS
from .retries import RetryPolicy
from .service import IndexingService, Outcome

log = structlog.get_logger()

# (service, event, correlation id, first delivery: neither redelivered by the broker nor retried by us)
Handler = Callable[[IndexingService, Any, str | None, bool], Awaitable[Outcome]]
GiveUp = Callable[[IndexingService, Any], Awaitable[object]]
Observer = Callable[[str, str], None]

HANDLERS: dict[type[Event], Handler] = {
    DistributionStored: lambda service, event, cid, first: service.distribution_stored(event, cid, first),
    FileDeleted: lambda service, event, _cid, _first: service.file_deleted(event),
}
# What to undo when a message is dead-lettered after its retry window: a stored distribution that will
# never be indexed must not keep its filename taken.
GIVE_UP: dict[type[Event], GiveUp] = {
    DistributionStored: lambda service, event: service.distribution_abandoned(event),
}
BINDINGS = tuple(cls.kind for cls in HANDLERS)
# Seconds the give-up action may take (the dependency that failed all along may still be down).
GIVE_UP_TIMEOUT = 15.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Consumer:
    """Consumes the work queue; `stop()` stops deliveries and lets the messages in hand finish."""

    def __init__(self, service: IndexingService, publisher: WorkerPublisher, retry: RetryPolicy, *,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.service = service
        self.publisher = publisher
        self.retry = retry
        self.clock = clock  # epoch milliseconds
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        # Called with (event kind, outcome) once a message is settled; tests await outcomes through it.
        self.observers: list[Observer] = []

    async def start(self, queue: AbstractQueue) -> None:
        self._queue = queue
        self._tag = await queue.consume(self.on_message)

    async def stop(self, grace: float) -> None:
        """Cancel the consumer, wait up to `grace` seconds for messages in hand; unfinished ones are requeued."""
        self._stopping.set()
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in pending:  # never acked, so the broker requeues them when the channel closes
                task.cancel()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping.is_set():
            await _settle(message.nack(requeue=True))
            return
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self.process(message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def process(self, message: AbstractIncomingMessage) -> None:
        bind_correlation_id(message.correlation_id)
        structlog.contextvars.bind_contextvars(message_id=message.message_id)
        # Metric label and log field: a known kind, or "other" (poison must not mint new label values).
        kind = message.type if message.type in BINDINGS else "other"
        started = time.perf_counter()
        try:
            event = parse_event(message.type, message.body)
            handler = HANDLERS.get(type(event))
            if handler is None:
                raise ValueError(f"no handler for {kind!r}")
        except (ValueError, ValidationError) as exc:
            log.warning("message_poisoned", message_type=str(message.type)[:100], error=_describe(exc))
            await _settle(message.reject(requeue=False))
            self._record(kind, "poisoned")
            return
        try:
            first = not message.redelivered and retries_of(message) == 0
            outcome = await handler(self.service, event, message.correlation_id, first)
        except Exception as exc:  # noqa: BLE001 - every non-content failure is retried, then dead-lettered
            await self._retry_or_dead_letter(message, kind, event, exc)
        else:
            await _settle(message.ack())
            self._record(kind, outcome.value)
        finally:
            PROCESSING_SECONDS.labels(kind).observe(time.perf_counter() - started)

    async def _retry_or_dead_letter(self, message: AbstractIncomingMessage, kind: str, event: Event,
                                    exc: Exception) -> None:
        retries, now = retries_of(message), self.clock()
        first_failure = first_failure_of(message, now)
        error = {"error": type(exc).__name__, "detail": str(exc)[:300], "retries": retries,
                 "failing_for": round((now - first_failure) / 1000, 1)}
        if self.retry.exhausted(first_failure, now):
            log.error("message_dead_lettered", message_type=kind, **error)
            await self._give_up(event, kind)
            await _settle(message.reject(requeue=False))
            self._record(kind, "dead_lettered")
            return
        delay_ms = self.retry.delay_ms(retries)
        log.warning("message_failed", message_type=kind, retry_in=delay_ms / 1000, **error)
        try:
            await self.publisher.retry_later(message, retries + 1, first_failure, delay_ms)
        except Exception as publish_exc:  # noqa: BLE001 - left unacked, the broker redelivers it
            log.error("message_retry_failed", message_type=kind, error=type(publish_exc).__name__)
            await _settle(message.nack(requeue=True))
            return
        await _settle(message.ack())
        self._record(kind, "retried")

    async def _give_up(self, event: Event, kind: str) -> None:
        """Best effort: if the undo fails too, the message is dead-lettered all the same (upload-api reclaims
        reservations whose lease ran out; a replay from the dead-letter queue tries the message again)."""
        give_up = GIVE_UP.get(type(event))
        if give_up is None:
            return
        try:
            async with asyncio.timeout(GIVE_UP_TIMEOUT):
                await give_up(self.service, event)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the message still goes to the dead letters
            log.error("message_give_up_failed", message_type=kind, error=type(exc).__name__, detail=str(exc)[:300])

    def _record(self, kind: str, outcome: str) -> None:
        MESSAGES.labels(kind, outcome).inc()
        for observer in self.observers:
            observer(kind, outcome)


def _describe(exc: Exception) -> str:
    """Why a body was refused, without echoing the body itself into the logs."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                         for e in exc.errors(include_input=False, include_url=False))[:300]
    return str(exc)[:300]


async def _settle(action: Awaitable[Any]) -> None:
    """Ack/nack/reject; if the channel is gone the broker requeues the message anyway."""
    try:
        await action
    except Exception as exc:  # noqa: BLE001
        log.warning("message_settle_failed", error=type(exc).__name__)
