"""A real outage while the worker indexes: MongoDB (an nx-27017 of this test alone) is stopped before a
stored upload's message arrives, and started again while the message waits in a delay queue. The message
is retried until the database is back, then indexed: the upload answered 202 becomes installable, nothing
reaches the dead-letter queue. Nothing sleeps: every step waits on an observed outcome."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from registry_shared.events import DistributionIndexed
from tests.support.servers import RestartableMongo
from tests.unit.worker.worker_archives import wheel

WHEEL = "demo_pkg-1.0-py3-none-any.whl"


@pytest.fixture
def worker_overrides(restartable_mongo: RestartableMongo) -> dict[str, Any]:
    # The worker on this test's server; a 1 s delay queue and an hour's window (the production shape).
    return {"mongodb_url": f"{restartable_mongo.url}/outage", "worker_retry_delay": 1.0, "worker_retry_delay_max": 1.0,
            "worker_retry_window": 3600}


async def test_mongodb_down_while_indexing_is_retried_until_it_is_back(worker, restartable_mongo) -> None:
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel())
    await asyncio.to_thread(restartable_mongo.stop)
    await worker.publish(event, "corr-outage")
    # The first try fails on the database (after the driver's server selection gives up), and waits in RabbitMQ.
    assert await worker.next_outcome("distribution.stored") == "retried"
    await asyncio.to_thread(restartable_mongo.start)
    verdict = await worker.next_event("distribution.indexed")
    assert isinstance(verdict.event, DistributionIndexed) and verdict.event.upload_id == event.upload_id
    assert verdict.correlation_id == "corr-outage"
    doc = await worker.packages.get_file(event.file_id)
    assert doc is not None and doc.state == "installable"
    assert worker.dead.empty()
