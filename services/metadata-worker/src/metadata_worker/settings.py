"""metadata-worker settings: the shared WorkerSettings, read once in __main__, plus the worker's own."""
from __future__ import annotations

from pydantic import Field

from registry_shared.settings import WorkerSettings as SharedWorkerSettings


class WorkerSettings(SharedWorkerSettings):
    # The local port of contracts.md; HTTP serves only health, readiness and metrics.
    http_port: int = 8085
    # Seconds before the first retry of a transient failure; doubles with each retry, capped.
    worker_retry_delay: float = Field(default=1.0, ge=0)
    worker_retry_delay_max: float = Field(default=30.0, ge=0)


__all__ = ["WorkerSettings"]
