"""Structured logs: one JSON object per line, the correlation id bound through contextvars.

Every request writes one line, so the processor chain is kept lean: decisions about keys are cached,
the timestamp's date part is formatted once a second, and orjson renders straight to bytes.
"""
from __future__ import annotations

import datetime
import functools
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor

_SECRET_KEYS = re.compile(r"(token|password|secret|authorization)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(://)([^/@:\s]+):([^/@\s]+)@")


# The correlation id of lines written outside any request or message (start-up, shutdown, reconnects):
# one per process, so those lines can be followed together like a request's.
PROCESS_CORRELATION_ID = uuid.uuid4().hex


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Log keys come from code, not from requests: a small set, remembered (and bounded all the same).
    return _SECRET_KEYS.search(key) is not None


def _redact(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """Last line of defence: no secret reaches a log even if a caller passes one."""
    for key, value in event.items():  # values are replaced, never added or removed: safe while iterating
        if value is None or key == "credential_id":
            continue
        if _secret_key(key):
            event[key] = "[redacted]"
        elif isinstance(value, str) and "@" in value:
            event[key] = _URL_CREDENTIALS.sub(r"\1[redacted]@", value)
    return event


class UtcTimeStamper:
    """`timestamp` in ISO 8601 UTC with microseconds and a `Z`, as structlog's TimeStamper(fmt="iso",
    utc=True) writes it, but formatting the date and time of day only when the second changes."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _name: str, event: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self._prefix, self._second = moment.strftime("%Y-%m-%dT%H:%M:%S"), second
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def configure_logging(service: str, level: str = "info", replica_id: str = "") -> None:
    """Configure structlog (and stdlib logging) to write JSON lines to stdout. Call once at start-up."""
    numeric = logging.getLevelName(level.upper())  # an int for a known level name, else a string
    if not isinstance(numeric, int):
        numeric = logging.INFO
    static = {"service": service, "correlation_id": PROCESS_CORRELATION_ID}  # a bound id comes first
    if replica_id:
        static["replica"] = replica_id

    def add_static(_logger: Any, _name: str, event: EventDict) -> EventDict:
        for k, v in static.items():
            event.setdefault(k, v)
        return event

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UtcTimeStamper(),
        add_static,
    ]
    # orjson renders bytes: written as they are when stdout has a binary buffer, else decoded.
    stdout = getattr(sys.stdout, "buffer", None)
    renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _redact,
            renderer if stdout is not None else _decoded(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=(structlog.BytesLoggerFactory(stdout) if stdout is not None
                        else structlog.PrintLoggerFactory(sys.stdout)),
        cache_logger_on_first_use=True,
    )
    # Libraries log through stdlib: render them as JSON lines too, at WARNING and above.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _redact,
                        _decoded(renderer)],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).disabled = True


def _dumps(event: dict[str, Any], default: Any = None) -> bytes:
    """orjson for speed; the standard library for the little orjson refuses (integers past 64 bits), so
    that writing a log line never fails the request it describes."""
    try:
        return orjson.dumps(event, default=default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(event, default=default).encode()


def _decoded(renderer: Callable[[Any, str, EventDict], str | bytes]) -> Processor:
    def render(logger: Any, name: str, event: EventDict) -> str:
        rendered = renderer(logger, name, event)
        return rendered.decode() if isinstance(rendered, bytes) else rendered

    return render


def bind_correlation_id(correlation_id: str | None) -> None:
    """Bind (or clear) the correlation id for every log line of the current task."""
    structlog.contextvars.clear_contextvars()
    if correlation_id:
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)


def current_correlation_id() -> str:
    """The id bound to the current task (a request's, a message's), else the process's own."""
    return structlog.contextvars.get_contextvars().get("correlation_id") or PROCESS_CORRELATION_ID


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
