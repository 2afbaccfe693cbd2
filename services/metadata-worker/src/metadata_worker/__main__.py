"""Run metadata-worker: `python -m metadata_worker`.

aiohttp's runner handles SIGTERM/SIGINT: the consumer is stopped and the messages in hand finish (or,
past SHUTDOWN_TIMEOUT, are left unacked for the broker to redeliver) before connections close.
"""
from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web

from registry_shared.logging import configure_logging

from .app import create_app
from .settings import WorkerSettings


def main() -> None:
    settings = WorkerSettings()
    configure_logging("metadata-worker", settings.log_level, settings.replica_id)
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
