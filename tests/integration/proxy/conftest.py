"""Fixtures of the proxy's integration tests: a fake upstream index in-process (tests/support/upstream.py),
and the proxy's production app (`create_app(settings)`) against the session's MongoDB and S3, behind
aiohttp's test client. (No `__init__.py` here: a package named `proxy` would shadow the service.)"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from proxy.app import create_app
from proxy.settings import ProxySettings
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore
from tests.support.servers import app_clients, settings_from_env
from tests.support.upstream import FakeUpstream, serving

BASE = "https://registry.example.test"


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, TestServer]]:
    fake = FakeUpstream()
    async with serving(fake) as server:
        yield fake, server


@pytest.fixture
def proxy_settings(service_env: dict[str, str], upstream) -> ProxySettings:
    _, server = upstream
    return settings_from_env(ProxySettings, service_env, registry_external_url=BASE,
                             proxy_upstream_url=str(server.make_url("/simple/")), proxy_upstream_timeout=5.0)


@pytest.fixture
async def store(proxy_settings: ProxySettings) -> ObjectStore:
    store = ObjectStore.from_settings(proxy_settings)
    await store.ensure_bucket()
    return store


@pytest.fixture
async def mongo(proxy_settings: ProxySettings) -> AsyncIterator[Mongo]:
    mongo = Mongo.connect(proxy_settings.mongodb_url, proxy_settings.mongodb_database)
    yield mongo
    await mongo.close()


@pytest.fixture
async def make_proxy(proxy_settings: ProxySettings, store) -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    async with app_clients(create_app, proxy_settings, host="127.0.0.1") as make:
        yield make


@pytest.fixture
async def proxy(make_proxy) -> TestClient:
    return await make_proxy()


async def sample(proxy: TestClient, name: str, **labels: str) -> float:
    """One sample of the proxy's `/metrics` (0 when absent). Counters are per process, so tests compare a
    value before and after what they do."""
    text = await (await proxy.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str, deadline: float = 10.0) -> None:
    """Poll `check` under a deadline (for what happens after a response: an S3 upload, an extraction)."""
    try:
        async with asyncio.timeout(deadline):
            while True:
                result = check()
                if await result if asyncio.iscoroutine(result) else result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {deadline} s: {what}") from None
