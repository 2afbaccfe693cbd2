"""`python -m index_api`: read the settings once, configure logging, serve."""
from __future__ import annotations

import uvloop
from aiohttp import web

from registry_shared.logging import configure_logging

from .app import create_app
from .settings import IndexSettings


def main() -> None:
    settings = IndexSettings()
    configure_logging("index-api", settings.log_level, settings.replica_id)
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


if __name__ == "__main__":
    main()
