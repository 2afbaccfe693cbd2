"""The worker's verdicts, delivered to this replica's private queue and matched to waiting uploads.

The same queue receives the index-api and web replicas' `index.applied` answers to the `index.changed` of
each file this replica uploaded (the worker addresses them here: `DistributionStored.answers_to`). An
indexed verdict names that announcement and the replicas to wait for, and the upload's verdict is handed
over only once they have all answered (bounded by `INDEX_APPLIED_TIMEOUT`, as the worker's own wait is):
a 201 means no replica still serves the old page.
"""
from __future__ import annotations

import asyncio
import uuid

import structlog
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.adapters.amqp import Broker
from registry_shared.events import DistributionIndexed, DistributionRejected, IndexApplied, parse_event
from registry_shared.replicas import AnswerBook, Awaited
from registry_shared.topology import verdict_bindings

from ..ports import Verdict

log = structlog.get_logger()


class VerdictWaiter:
    """The `Verdicts` port: one per process. `reply_to` names this replica in the verdicts' routing keys;
    `answers_to` is its queue, where the replicas' answers come."""

    def __init__(self, applied_timeout: float = 2.0) -> None:
        self.reply_to = uuid.uuid4().hex
        self.answers_to = ""
        self.applied_timeout = applied_timeout
        self.answers = AnswerBook()
        self._waiting: dict[str, asyncio.Future[Verdict]] = {}
        self._settling: set[asyncio.Task[None]] = set()

    async def start(self, broker: Broker) -> None:
        queue = await broker.declare_private_queue(verdict_bindings(self.reply_to))
        self.answers_to = queue.name
        await broker.consume(queue, self._on_message)

    def expect(self, upload_id: str) -> asyncio.Future[Verdict]:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting[upload_id] = future
        return future

    def forget(self, upload_id: str) -> None:
        self._waiting.pop(upload_id, None)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process(ignore_processed=True):
            try:
                event = parse_event(message.type, message.body)
            except ValueError:
                log.warning("verdict_unparseable", message_type=message.type)
                return
            self.received(event)

    def received(self, event: object) -> None:
        """An answer or a verdict from this replica's queue."""
        if isinstance(event, IndexApplied):
            self.answers.answered(event)
            return
        if not isinstance(event, (DistributionIndexed, DistributionRejected)):
            return
        future = self._waiting.pop(event.upload_id, None)
        if future is None or future.done():
            return
        if isinstance(event, DistributionIndexed) and event.awaited:
            task = asyncio.get_running_loop().create_task(self._hand_over_applied(event, future))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        else:
            future.set_result(event)

    async def _hand_over_applied(self, verdict: DistributionIndexed, future: asyncio.Future[Verdict]) -> None:
        silent = await self.answers.wait(Awaited(verdict.applied_id, verdict.awaited), self.applied_timeout)
        if silent:
            log.warning("index_change_not_applied", kind="index.changed", replicas=silent,
                        timeout_s=self.applied_timeout, file_id=verdict.file_id)
        if not future.done():
            future.set_result(verdict)
