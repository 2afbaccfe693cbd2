"""Structured logs: one JSON object per line, the correlation id bound through contextvars."""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|password|secret|authorization)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(://)([^/@:\s]+):([^/@\s]+)@")


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: no secret reaches a log even if a caller passes one."""
    for key, value in list(event.items()):
        if key == "credential_id":
            continue
        if _SECRET_KEYS.search(key) and value is not None:
            event[key] = "[redacted]"
        elif isinstance(value, str) and "@" in value:
            event[key] = _URL_CREDENTIALS.sub(r"\1[redacted]@", value)
    return event


def configure_logging(service: str, level: str = "info", replica_id: str = "") -> None:
    """Configure structlog (and stdlib logging) to write JSON lines to stdout. Call once at start-up."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        numeric = logging.INFO
    static = {"service": service}
    if replica_id:
        static["replica"] = replica_id

    def add_static(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        for k, v in static.items():
            event.setdefault(k, v)
        return event

    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_static,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # Libraries log through stdlib: render them as JSON lines too, at WARNING and above.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _redact,
                        structlog.processors.JSONRenderer()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).disabled = True


def bind_correlation_id(correlation_id: str | None) -> None:
    """Bind (or clear) the correlation id for every log line of the current task."""
    structlog.contextvars.clear_contextvars()
    if correlation_id:
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
