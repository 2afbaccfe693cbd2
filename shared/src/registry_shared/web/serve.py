"""Running an HTTP service process: what every service's `__main__` does, once."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvloop
from aiohttp import web

from ..logging import configure_logging
from ..settings import HttpSettings

S = TypeVar("S", bound=HttpSettings)


def serve(service: str, settings_class: type[S], create_app: Callable[[S], web.Application]) -> None:
    """Read the settings once, configure logging, and serve until SIGTERM/SIGINT.

    On a signal aiohttp stops accepting connections, lets in-flight requests (and, through the apps'
    cleanup contexts, messages in hand) finish for up to SHUTDOWN_TIMEOUT seconds, then closes.
    """
    settings = settings_class()
    configure_logging(service, settings.log_level, settings.replica_id)
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,  # the shared middleware writes one canonical line per request
        print=None,
        handle_signals=True,
        loop=uvloop.new_event_loop(),
    )
