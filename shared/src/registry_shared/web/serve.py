"""Running an HTTP service process: what every service's `__main__` does, once."""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TypeVar

import structlog
import uvloop
from aiohttp import web

from ..logging import configure_logging
from ..settings import HttpSettings
from .app import IN_FLIGHT

S = TypeVar("S", bound=HttpSettings)
log = structlog.get_logger()
FINAL_WAIT_S = 2.0


def serve(service: str, settings_class: type[S], create_app: Callable[[S], web.Application]) -> None:
    """Read the settings once, configure logging, and serve until SIGTERM/SIGINT, then shut down gracefully."""
    settings = settings_class()
    configure_logging(service, settings.log_level, settings.replica_id)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_until_signalled(create_app(settings), settings))


async def run_until_signalled(app: web.Application, settings: HttpSettings) -> None:
    """Serve `app`; on SIGTERM or SIGINT: stop listening, let the requests in flight finish (their bodies
    still being read) for up to SHUTDOWN_TIMEOUT seconds, then close connections and run the app's cleanup
    contexts (which finish or requeue a message in hand, then disconnect).

    aiohttp's own run_app is not used: its shutdown stops reading request bodies at once, so an upload still
    arriving when SIGTERM lands could never finish.
    """
    # aiohttp's own wait (in cleanup) comes after ours: by then only idle keep-alive connections, or a
    # response being written as it returned, remain.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=FINAL_WAIT_S)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.http_host, settings.http_port)
        await site.start()
        await stop.wait()
        in_flight = app[IN_FLIGHT]
        in_flight.draining = True
        log.info("shutdown_started", in_flight=in_flight.count, timeout_s=settings.shutdown_timeout)
        await site.stop()  # no new connections; the open ones keep being served
        try:
            await asyncio.wait_for(in_flight.idle.wait(), settings.shutdown_timeout)
        except TimeoutError:
            log.warning("shutdown_timeout_reached", in_flight=in_flight.count)
    finally:
        await runner.cleanup()
        log.info("shutdown_finished")
