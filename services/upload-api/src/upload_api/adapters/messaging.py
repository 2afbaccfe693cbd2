"""The worker's verdicts, delivered to this replica's private queue and matched to waiting uploads."""
from __future__ import annotations

import asyncio
import uuid

import structlog
from aio_pika.abc import AbstractIncomingMessage

from registry_shared.adapters.amqp import Broker
from registry_shared.events import DistributionIndexed, DistributionRejected, parse_event
from registry_shared.topology import verdict_bindings

from ..ports import Verdict

log = structlog.get_logger()


class VerdictWaiter:
    """The `Verdicts` port: one per process. `reply_to` names this replica in the verdicts' routing keys."""

    def __init__(self) -> None:
        self.reply_to = uuid.uuid4().hex
        self._waiting: dict[str, asyncio.Future[Verdict]] = {}

    async def start(self, broker: Broker) -> None:
        queue = await broker.declare_private_queue(verdict_bindings(self.reply_to))
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
            if not isinstance(event, (DistributionIndexed, DistributionRejected)):
                return
            future = self._waiting.pop(event.upload_id, None)
            if future is not None and not future.done():
                future.set_result(event)
