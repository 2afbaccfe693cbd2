"""Replay metadata-worker's dead letters: move messages from `<AMQP_EXCHANGE>.metadata-worker.dead` back
to the work queue `<AMQP_EXCHANGE>.metadata-worker`.

Runs where the services run, with their settings (AMQP_URL, AMQP_EXCHANGE) and their packages; nothing
needs to be installed. From a machine with kubectl:

    kubectl exec -i deploy/<release>-registry-metadata-worker -- python - --dry-run < deploy/k8s/tools/dlq_replay.py
    kubectl exec -i deploy/<release>-registry-metadata-worker -- python - --limit 100 < deploy/k8s/tools/dlq_replay.py

Each message keeps its body, type, message id and correlation id (so its logs join the original upload's);
the dead-letter history (`x-death`), the worker's retry count (`x-retries`) and the time of its first
failure (`x-first-failure-ms`) are dropped, so it gets a full retry window again. It goes through the
default exchange straight to the work queue, as the worker's own retries do: no other queue bound to its
routing key sees it twice. A message is acked
in the dead-letter queue only after the broker confirmed its copy, so a failure leaves it where it was.
Prints one JSON object: {"replayed": n, "dead_letter_queue": name, "left": m, "messages": [...]}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import aio_pika

from registry_shared.settings import CommonSettings
from registry_shared.topology import dead_letter_queue, worker_queue

DROPPED_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-retries",
                   "x-first-failure-ms")


def describe(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    deaths = (message.headers or {}).get("x-death") or []
    reason = deaths[0].get("reason") if deaths and isinstance(deaths[0], dict) else None
    return {"type": message.type, "message_id": message.message_id, "correlation_id": message.correlation_id,
            "reason": reason.decode() if isinstance(reason, bytes) else reason,
            "retries": (message.headers or {}).get("x-retries")}


async def replay(amqp_url: str, exchange: str, limit: int | None, dry_run: bool) -> dict[str, Any]:
    work_queue = worker_queue(exchange)
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # passive: fails if the queue does not exist rather than creating one without the worker's arguments
        dead = await channel.declare_queue(dead_letter_queue(work_queue), passive=True)
        await channel.declare_queue(work_queue, passive=True)
        seen: list[dict[str, Any]] = []
        held = []  # dry run: held unacked until the end, so each message is read once, then all requeued
        while limit is None or len(seen) < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            seen.append(describe(message))
            if dry_run:
                held.append(message)
                continue
            headers = {k: v for k, v in (message.headers or {}).items() if k not in DROPPED_HEADERS}
            copy = aio_pika.Message(
                body=message.body, headers=headers, content_type=message.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=message.message_id,
                correlation_id=message.correlation_id, type=message.type,
            )
            try:
                await channel.default_exchange.publish(copy, routing_key=work_queue, timeout=10)
            except Exception:
                await message.nack(requeue=True)
                raise
            await message.ack()
        # Counted before the held messages go back: a nack has no reply, so a count taken after it could
        # miss messages the broker has not requeued yet. Held (unacked) messages are not in the count.
        left = (await dead.declare()).message_count + len(held)  # passive, like the first declaration
        for message in held:
            await message.nack(requeue=True)
    return {"replayed": 0 if dry_run else len(seen), "dead_letter_queue": dead_letter_queue(work_queue),
            "left": left, "messages": seen}


def main() -> int:
    parser = argparse.ArgumentParser(description="Replay metadata-worker's dead-letter queue.")
    parser.add_argument("--dry-run", action="store_true", help="list the dead letters, move nothing")
    parser.add_argument("--limit", type=int, default=None, help="at most this many messages")
    args = parser.parse_args()
    settings = CommonSettings()  # the services' settings: same environment variables, same defaults
    result = asyncio.run(replay(settings.amqp_url, settings.amqp_exchange, args.limit, args.dry_run))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
