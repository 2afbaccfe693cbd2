"""Fixtures of the index-api integration tests: the test's own database, bucket and exchange
(`service_env` from tests/conftest.py), a seeder, a publisher, and `create_app(settings)` behind aiohttp's
test client."""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from index_api.app import create_app
from index_api.settings import IndexSettings
from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.events import Event
from tests.integration.index_api.index_support import BASE, Seeder
from tests.support.servers import app_clients, settings_from_env


@pytest.fixture
def index_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The shared `service_env` (servers of the session), or already running servers named by
    TEST_MONGODB_URL / TEST_S3_ENDPOINT / TEST_AMQP_URL (handy while iterating on one test)."""
    mongodb_url = os.environ.get("TEST_MONGODB_URL")
    if not mongodb_url:
        return request.getfixturevalue("service_env")
    suffix = f"index-{uuid.uuid4().hex[:12]}"
    return {"MONGODB_URL": f"{mongodb_url.rstrip('/')}/test_{suffix.replace('-', '_')}",
            "S3_ENDPOINT": os.environ.get("TEST_S3_ENDPOINT", "http://127.0.0.1:8999"),
            "AMQP_URL": os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            "AMQP_EXCHANGE": f"test-{suffix}", "S3_BUCKET": f"test-{suffix}", "S3_ACCESS_KEY": "any",
            "S3_SECRET_KEY": "any", "REPLICA_ID": f"test-{suffix}"}


@pytest.fixture
def index_settings(index_env: dict[str, str]) -> IndexSettings:
    # A long credential TTL makes "the cache is dropped by the event" observable, not a race with time.
    # Forwarding answers GitLab's 302 here; tests of the pull-through cache start a proxy and pass
    # proxy_mode="cache" and its proxy_url to make_client.
    return settings_from_env(IndexSettings, index_env, registry_external_url=BASE, auth_cache_ttl=60.0,
                             proxy_mode="redirect")


@pytest.fixture
async def mongo(index_settings: IndexSettings) -> AsyncIterator[Mongo]:
    mongo = Mongo.connect(index_settings.mongodb_url, index_settings.mongodb_database)
    await mongo.ensure_indexes()
    yield mongo
    await mongo.close()


@pytest.fixture
async def store(index_settings: IndexSettings) -> ObjectStore:
    store = ObjectStore.from_settings(index_settings)
    await store.ensure_bucket()
    return store


@pytest.fixture
def seed(mongo: Mongo, store: ObjectStore) -> Seeder:
    return Seeder(mongo, store)


@pytest.fixture
async def broker(index_settings: IndexSettings) -> AsyncIterator[Broker]:
    """A publisher on the test's exchange; the exchange is deleted once the app has stopped."""
    broker = Broker(index_settings.amqp_url, index_settings.amqp_exchange)
    await broker.connect()
    yield broker
    await broker.channel.exchange_delete(index_settings.amqp_exchange)
    await broker.close()


@pytest.fixture
def publish(broker: Broker) -> Callable[[Event, str | None], Awaitable[None]]:
    async def _publish(event: Event, correlation_id: str | None = None) -> None:
        await broker.publish(event, correlation_id)
    return _publish


@pytest.fixture
async def make_client(index_settings: IndexSettings,
                      broker: Broker) -> AsyncIterator[Callable[..., Awaitable[TestClient]]]:
    """Start index-api with the test settings (keyword overrides allowed); every one is stopped at teardown."""
    async with app_clients(create_app, index_settings) as make:
        yield make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    return await make_client()

