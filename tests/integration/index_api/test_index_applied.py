"""Read-your-writes across replicas: an announced `index.changed` returns only once every live index-api
replica has applied it (registry_shared.replicas), so the verdict or delete answer that follows is true on
all of them. Nothing here waits on a clock: what must have happened is checked when `announce` returns."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from registry_shared.adapters.mongo import Mongo
from registry_shared.events import IndexChanged, Scope
from registry_shared.replicas import Announcer, ReplicaRegistry, ReplicaView
from tests.integration.index_api.index_support import Seeder


async def _project_with_page(seed: Seeder) -> dict:
    await seed.group("acme")
    project = await seed.project("acme/api")
    await seed.add_file(project, "alpha-1.0.tar.gz", b"one", name="alpha", version="1.0")
    await seed.publish_pages()
    return project


async def _announcer(broker, mongo: Mongo, wait_s: float) -> Announcer:
    announcer = Announcer(broker, ReplicaRegistry(mongo), wait_s)
    await announcer.start()
    return announcer


def _changed(project: dict) -> IndexChanged:
    return IndexChanged(scopes=[Scope(kind="project", id=project["_id"])], names=["alpha"])


async def test_announce_returns_once_every_replica_applied(make_client, seed: Seeder, broker, mongo: Mongo) -> None:
    project = await _project_with_page(seed)
    replicas = [await make_client(), await make_client()]
    url = f"/api/v4/projects/{project['_id']}/packages/pypi/simple/alpha"
    for replica in replicas:  # cached on both
        assert "alpha-2.0.tar.gz" not in await (await replica.get(url)).text()
    assert len(await ReplicaRegistry(mongo).live()) == 2
    await seed.add_file(project, "alpha-2.0.tar.gz", b"two", name="alpha", version="2.0")
    await seed.publish_pages()

    announcer = await _announcer(broker, mongo, wait_s=20)
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await announcer.announce(_changed(project), "corr-applied-1")
        # Already true when announce returns: both replicas dropped the page, nobody was given up on.
        applied = [e for e in logs if e["event"] == "index_cache_invalidated"]
        assert [e["correlation_id"] for e in applied] == ["corr-applied-1", "corr-applied-1"]
        assert not [e for e in logs if e["event"] == "index_change_not_applied"]
    for replica in replicas:
        assert "alpha-2.0.tar.gz" in await (await replica.get(url)).text()


async def test_a_silent_live_replica_is_waited_for_then_passed_over(make_client, seed: Seeder, broker,
                                                                    mongo: Mongo) -> None:
    project = await _project_with_page(seed)
    await make_client()
    registry = ReplicaRegistry(mongo)
    await registry.beat("ghost-replica")  # heartbeating, but consuming nothing: it never answers
    announcer = await _announcer(broker, mongo, wait_s=0.5)
    with structlog.testing.capture_logs() as logs:
        await announcer.announce(_changed(project), "corr-ghost")
    (given_up,) = [e for e in logs if e["event"] == "index_change_not_applied"]
    assert given_up["replicas"] == ["ghost-replica"]  # the real replica answered
    assert len([e for e in logs if e["event"] == "index_cache_invalidated"]) == 1


async def test_a_replica_that_stopped_beating_is_not_waited_for(make_client, seed: Seeder, broker,
                                                                mongo: Mongo) -> None:
    project = await _project_with_page(seed)
    await make_client()
    await mongo.replicas.insert_one({"_id": "gone-replica", "role": "index-api",
                                     "seen_at": datetime.now(UTC) - timedelta(minutes=5)})
    assert "gone-replica" not in await ReplicaRegistry(mongo).live()
    announcer = await _announcer(broker, mongo, wait_s=30)
    with structlog.testing.capture_logs() as logs:
        await announcer.announce(_changed(project), "corr-gone")
    assert not [e for e in logs if e["event"] == "index_change_not_applied"]
    assert len([e for e in logs if e["event"] == "index_cache_invalidated"]) == 1


async def test_a_replica_beats_while_serving_and_leaves_when_stopped(make_client, mongo: Mongo,
                                                                     index_settings) -> None:
    registry = ReplicaRegistry(mongo)
    client = await make_client()
    (replica,) = await registry.live()
    assert replica.startswith(f"{index_settings.replica_id}-")  # REPLICA_ID and a suffix unique per process
    await client.close()
    assert await registry.live() == set()


async def test_a_replica_view_hears_replicas_join_and_leave_at_once(make_client, broker, mongo: Mongo) -> None:
    """The metadata-worker's view of the live replicas (ReplicaView): a replica is in it as soon as it beats
    (`replica.joined`) and out as soon as it stops (`replica.left`), not a heartbeat later; and an
    upload's announcement names the view's replicas without looking them up."""
    async with ReplicaView(ReplicaRegistry(mongo), every=3600).running(broker) as view:  # no timed refresh here
        assert view.live(["index-api"]) == set()
        client = await make_client()
        (replica,) = await ReplicaRegistry(mongo).live()
        await view.wait_for(lambda v: v.live(["index-api"]) == {replica})

        class NoLookup(ReplicaRegistry):
            async def seen(self, roles):  # type: ignore[no-untyped-def]
                raise AssertionError("looked up")

        announcer = Announcer(broker, NoLookup(mongo), 5, view=view)
        awaited = await announcer.publish_for(IndexChanged(scopes=[Scope(kind="project", id=1)]), "corr-view",
                                              "answers-queue-of-nobody")
        assert awaited.replicas == (replica,) and awaited.message_id

        await client.close()
        await view.wait_for(lambda v: v.live(["index-api"]) == set())
        await view.refresh()  # a read from MongoDB does not bring back a replica that left
        assert view.live(["index-api"]) == set()
