"""The proxy service's skeleton: health, readiness against real Mongo and S3, the placeholder route."""
from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from proxy.app import create_app
from proxy.settings import ProxySettings
from tests.support.servers import settings_from_env


async def test_proxy_skeleton_serves_health_ready_and_404(index_env: dict[str, str], store) -> None:
    async with TestClient(TestServer(create_app(settings_from_env(ProxySettings, index_env)))) as client:
        assert (await client.get("/-/health")).status == 200
        ready = await client.get("/-/ready")
        assert ready.status == 200
        assert (await ready.json())["checks"] == {"mongo": True, "s3": True}
        for path in ("/simple/requests", "/simple/requests/"):
            response = await client.get(path)
            assert response.status == 404
            assert await response.json() == {"message": "404 Package Not Found"}
        assert "registry_http_requests_total" in await (await client.get("/metrics")).text()


async def test_proxy_not_ready_without_mongo(index_env: dict[str, str]) -> None:
    # Nothing listens on port 9: the ping fails after the client's server-selection timeout.
    settings = settings_from_env(ProxySettings, {**index_env, "MONGODB_URL": "mongodb://127.0.0.1:9/none"})
    async with TestClient(TestServer(create_app(settings))) as client:
        response = await client.get("/-/ready")
        assert response.status == 503
        assert (await response.json())["checks"]["mongo"] is False
