"""metadata-worker settings: the shared WorkerSettings, read once in __main__, plus the worker's own."""
from __future__ import annotations

from pydantic import Field

from registry_shared.settings import WorkerSettings as SharedWorkerSettings


class WorkerSettings(SharedWorkerSettings):
    # The local port of contracts.md; HTTP serves only health, readiness and metrics.
    http_port: int = 8085
    # A transient failure (S3 or MongoDB down) is retried through delay queues (retries.py): first after
    # WORKER_RETRY_DELAY seconds (0: at once, through the work queue), doubling up to WORKER_RETRY_DELAY_MAX,
    # until WORKER_RETRY_WINDOW seconds have passed since the message's first failure: long enough for an
    # outage to end, since a message dead-lettered means an upload answered 202 that never becomes installable.
    worker_retry_delay: float = Field(default=1.0, ge=0)
    worker_retry_delay_max: float = Field(default=300.0, ge=0)
    worker_retry_window: float = Field(default=3600.0, ge=0)


__all__ = ["WorkerSettings"]
