"""`python -m proxy`: read the settings once, configure logging, serve."""
from __future__ import annotations

import uvloop
from aiohttp import web

from registry_shared.logging import configure_logging

from .app import create_app
from .settings import ProxySettings


def main() -> None:
    settings = ProxySettings()
    configure_logging("proxy", settings.log_level, settings.replica_id)
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
        print=None,
        handle_signals=True,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
