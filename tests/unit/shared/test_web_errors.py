"""The shared request middleware: a dependency that cannot be reached is a 503 to retry (with the
correlation id and Retry-After), not a 500; anything else unexpected is still a 500 with a traceback."""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import structlog
import urllib3
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo import AsyncMongoClient

from registry_shared.web.app import create_base_app


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = create_base_app("index-api")
    mongo: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{_closed_port()}/",
                                               serverSelectionTimeoutMS=200, connectTimeoutMS=200)

    async def needs_mongo(_request: web.Request) -> web.Response:
        await mongo.registry.projects.find_one({"_id": 1})  # a real driver, a real unreachable server
        return web.json_response({})

    async def needs_s3(_request: web.Request) -> web.Response:
        # urllib3 is what the minio client fails through; no retries, so the real error comes at once.
        urllib3.PoolManager(retries=0).request("GET", f"http://127.0.0.1:{_closed_port()}/bucket/key")
        return web.json_response({})

    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def close_mongo(_app: web.Application) -> None:
        await mongo.close()

    app.router.add_get("/needs-mongo", needs_mongo)
    app.router.add_get("/needs-s3", needs_s3)
    app.router.add_get("/broken", broken)
    app.on_cleanup.append(close_mongo)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize(("path", "what", "dependency", "error"), [
    ("/needs-mongo", "the database", "mongodb", "ServerSelectionTimeoutError"),
    ("/needs-s3", "object storage", "s3", "MaxRetryError"),
])
async def test_unreachable_dependency_is_503_to_retry(client: TestClient, path: str, what: str, dependency: str,
                                                      error: str) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await client.get(path)
    assert response.status == 503
    assert await response.json() == {"message": f"503 Service Unavailable - {what} is unreachable; retry"}
    assert response.headers["Retry-After"] == "5" and len(response.headers["X-Request-Id"]) == 32
    (warning,) = [e for e in logs if e["event"] == "dependency_unavailable"]
    assert (warning["dependency"], warning["error"], warning["log_level"]) == (dependency, error, "warning")
    assert not [e for e in logs if e["event"] == "request_failed"]
    (line,) = [e for e in logs if e["event"] == "http_request"]
    assert line["status"] == 503


async def test_a_bug_is_still_a_500(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await client.get("/broken")
    assert response.status == 500
    assert await response.json() == {"message": "500 Internal Server Error"}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["request_failed"]
