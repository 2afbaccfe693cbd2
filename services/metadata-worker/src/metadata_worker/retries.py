"""When a message that failed transiently is tried again, and when the worker gives up on it.

An outage of S3 or MongoDB can last minutes; a message given up on leaves an upload that was answered 202
never installable. So a failed message waits and comes back with exponential backoff (WORKER_RETRY_DELAY,
doubled per retry, capped at WORKER_RETRY_DELAY_MAX) until WORKER_RETRY_WINDOW seconds have passed since
its first failure, and only then is dead-lettered.

The wait happens in RabbitMQ, not in the handler: each possible delay is one queue with a fixed message
TTL that dead-letters expired messages back to the work queue (adapters/messaging.py). A fixed TTL per
queue keeps each queue first-in first-out, so a long wait never holds up a short one, and a waiting
message holds no prefetch slot. Delays are whole milliseconds, which name the queues.
"""
from __future__ import annotations

from dataclasses import dataclass

# Doubling stops here even when the cap is not reached (a tiny first delay with a huge cap).
_MAX_DOUBLINGS = 32


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_ms: int
    max_delay_ms: int
    window_ms: int

    @classmethod
    def from_seconds(cls, first_delay: float, max_delay: float, window: float) -> RetryPolicy:
        return cls(round(first_delay * 1000), round(max_delay * 1000), round(window * 1000))

    def delay_ms(self, retries: int) -> int:
        """The wait before the next try of a message already retried `retries` times (0: no wait)."""
        if self.first_delay_ms <= 0:
            return 0
        doublings = min(max(retries, 0), _MAX_DOUBLINGS)
        return min(self.first_delay_ms << doublings, max(self.max_delay_ms, self.first_delay_ms))

    def tiers_ms(self) -> tuple[int, ...]:
        """Every wait `delay_ms` can give, shortest first: one delay queue each."""
        return tuple(sorted({self.delay_ms(n) for n in range(_MAX_DOUBLINGS + 1)} - {0}))

    def exhausted(self, first_failure_ms: int, now_ms: int) -> bool:
        """Whether the retry window since the message's first failure has passed."""
        return now_ms - first_failure_ms >= self.window_ms
