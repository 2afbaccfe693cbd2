"""Prometheus metrics of the worker (served by the base app's /metrics)."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "registry_worker_messages_total", "Messages processed by the metadata worker, by event kind and outcome",
    ["kind", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "registry_worker_processing_seconds", "Time to process one message, by event kind", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
