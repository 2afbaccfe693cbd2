"""Every replica drops what an event says changed: pages on `index.changed`, credential and access
lookups on `token.revoked` / `access.changed`. Waits are on the new answer under a deadline."""
from __future__ import annotations

import aio_pika
import structlog
from aiohttp.test_utils import TestClient

from registry_shared.domain.access import Role
from registry_shared.events import AccessChanged, IndexChanged, Scope, TokenRevoked
from tests.integration.index_api.index_support import Seeder, basic, wait_for


async def test_index_changed_invalidates_cached_pages(make_client, seed: Seeder, publish) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    await seed.add_file(project, "alpha-1.0.tar.gz", b"one", name="alpha", version="1.0")
    await seed.publish_pages()
    replicas = [await make_client(), await make_client()]  # two replicas, each with its own queue
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple/alpha"
    for replica in replicas:
        assert "alpha-1.0.tar.gz" in await (await replica.get(url)).text()
    index_url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple"
    assert "beta" not in await (await replicas[0].get(index_url)).text()

    await seed.add_file(project, "alpha-2.0.tar.gz", b"two", name="alpha", version="2.0")
    await seed.add_file(project, "beta-1.0.tar.gz", b"b", name="beta", version="1.0")
    await seed.publish_pages()  # written, but not announced: the cached page is what is served
    assert "alpha-2.0.tar.gz" not in await (await replicas[0].get(url)).text()

    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await publish(IndexChanged(scopes=[Scope(kind="project", id=project["_id"])], names=["alpha"]),
                      "upload-correlation-1234")
        for replica in replicas:
            async def shows_new_file(replica: TestClient = replica) -> bool:
                return "alpha-2.0.tar.gz" in await (await replica.get(url)).text()
            await wait_for(shows_new_file, "the page lists the new file")
        # The index of the scope is dropped with any of its names: the new name appears too.
        assert "beta" in await (await replicas[0].get(index_url)).text()
    invalidations = [e for e in logs if e["event"] == "index_cache_invalidated"]
    assert len(invalidations) == 2
    for line in invalidations:
        assert line["correlation_id"] == "upload-correlation-1234"
        assert line["scopes"] == [f"project:{project['_id']}"]
        assert line["names"] == ["alpha"]


async def test_index_changed_of_other_scope_keeps_the_page(client: TestClient, seed: Seeder, publish) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    other = await seed.project("acme/other")
    await seed.add_file(project, "alpha-1.0.tar.gz", b"one", name="alpha", version="1.0")
    await seed.publish_pages()
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple/alpha"
    assert (await client.get(url)).status == 200
    await seed.add_file(project, "alpha-2.0.tar.gz", b"two", name="alpha", version="2.0")
    await seed.publish_pages()
    with structlog.testing.capture_logs() as logs:
        await publish(IndexChanged(scopes=[Scope(kind="project", id=other["_id"])], names=[]), None)

        async def event_handled() -> bool:
            await client.get("/-/health")
            return any(e["event"] == "index_cache_invalidated" for e in logs)
        await wait_for(event_handled, "the event reached the replica")
    assert "alpha-2.0.tar.gz" not in await (await client.get(url)).text()


async def test_token_revoked_drops_cached_credentials(client: TestClient, seed: Seeder, publish) -> None:
    await seed.group("corp", "private")
    project = await seed.project("corp/secret", "private")
    user = await seed.user("reader")
    await seed.member(user, "project", project, Role.REPORTER)
    doc, token = await seed.tenancy.create_personal_token(user["_id"], ["read_api"], None)
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple"
    assert (await client.get(url, headers=basic("reader", token))).status == 200
    await seed.tenancy.revoke("personal_tokens", doc["_id"])
    assert (await client.get(url, headers=basic("reader", token))).status == 200  # cached lookup
    await publish(TokenRevoked(token_kind="personal", token_id=doc["_id"]), None)

    async def rejected() -> bool:
        return (await client.get(url, headers=basic("reader", token))).status == 401
    await wait_for(rejected, "the revoked token is refused")


async def test_access_changed_drops_cached_permissions(client: TestClient, seed: Seeder, publish) -> None:
    await seed.group("corp", "private")
    project = await seed.project("corp/secret", "private")
    user = await seed.user("reader")
    await seed.member(user, "project", project, Role.REPORTER)
    headers = basic("reader", await seed.token(user))
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple"
    assert (await client.get(url, headers=headers)).status == 200
    await seed.tenancy.remove_member(user["_id"], "project", project["_id"])
    # Published without an explicit id (as registry-admin does): the publisher's own id rides along, so
    # the replica's line of it can be joined to the change that caused it.
    structlog.contextvars.bind_contextvars(correlation_id="admin-command-5678")
    try:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            await publish(AccessChanged(project_ids=[project["_id"]]), None)

            async def refused() -> bool:
                return (await client.get(url, headers=headers)).status == 404
            await wait_for(refused, "the former member is refused")
    finally:
        structlog.contextvars.unbind_contextvars("correlation_id")
    (dropped,) = [e for e in logs if e["event"] == "access_cache_dropped"]
    assert dropped["correlation_id"] == "admin-command-5678" and dropped["reason"] == AccessChanged.kind


async def test_readiness_and_cache_metrics(client: TestClient, seed: Seeder) -> None:
    ready = await client.get("/-/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"mongodb": True, "s3": True, "amqp": True}
    await seed.group("acme")
    project = await seed.project("acme/api")
    for _ in range(2):
        await client.get(f"/api/v4/projects/{project['_id']}/packages/pypi/simple")
    metrics = await (await client.get("/metrics")).text()
    assert 'registry_index_page_cache_total{result="hit"}' in metrics
    assert 'registry_index_page_cache_total{result="miss"}' in metrics


async def test_unreadable_message_is_dropped_and_later_events_still_work(
        client: TestClient, seed: Seeder, broker, publish) -> None:
    await seed.group("acme")
    project = await seed.project("acme/api")
    await seed.add_file(project, "alpha-1.0.tar.gz", b"one", name="alpha", version="1.0")
    await seed.publish_pages()
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple/alpha"
    assert (await client.get(url)).status == 200
    await seed.add_file(project, "alpha-2.0.tar.gz", b"two", name="alpha", version="2.0")
    await seed.publish_pages()
    with structlog.testing.capture_logs() as logs:
        await broker.exchange.publish(aio_pika.Message(b"{not json", type="index.changed"), routing_key="index.changed")
        await publish(IndexChanged(scopes=[Scope(kind="project", id=project["_id"])], names=["alpha"]), None)

        async def shows_new_file() -> bool:
            return "alpha-2.0.tar.gz" in await (await client.get(url)).text()
        await wait_for(shows_new_file, "the valid event after the unreadable one is handled")
    assert [e["type"] for e in logs if e["event"] == "event_unreadable"] == ["index.changed"]
