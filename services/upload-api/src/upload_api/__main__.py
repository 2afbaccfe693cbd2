"""Run upload-api: `python -m upload_api`."""
from __future__ import annotations

import asyncio

import uvloop
from aiohttp import web

from registry_shared.logging import configure_logging

from .app import create_app
from .settings import UploadSettings


def main() -> None:
    settings = UploadSettings()
    configure_logging("upload-api", settings.log_level, settings.replica_id)
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
