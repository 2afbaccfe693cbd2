"""The governance consumers' use cases (metadata_worker.governance) with fakes of their ports: one record per
event however often it is delivered, fan-out to the hooks that want it, download sums per document."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from metadata_worker.governance import AuditService, DownloadService, WebhookService
from registry_shared.events import (
    AuditRecorded,
    DistributionIndexed,
    DownloadCount,
    DownloadsCounted,
    Event,
    PackageYanked,
    WebhookDelivery,
)

ACTOR = {"principal": "user", "user_id": 7, "credential_id": 1}


class FakeStore:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.hook_docs = [{"_id": 1, "scope": "group:2", "url": "http://x", "events": []},
                          {"_id": 2, "scope": "project:5", "url": "http://y", "events": ["token_created"]}]
        self.added: list[tuple[str, int, int, datetime]] = []
        self.usernames = {7: "ann"}
        self.project_path = "acme/api"
        self.lookups: list[tuple[str, Any]] = []
        self.during_hooks: Any = None  # called while hooks() reads: what happens meanwhile

    async def insert_record(self, message_id: str, record: dict[str, Any], scopes: list[str]) -> dict[str, Any]:
        if message_id not in self.records:
            self.records[message_id] = {**record, "id": len(self.records) + 1, "scopes": scopes}
        return {k: v for k, v in self.records[message_id].items() if k != "scopes"}

    async def user_names(self, user_ids: Sequence[int]) -> dict[int, str]:
        self.lookups.append(("users", tuple(user_ids)))
        return {i: self.usernames[i] for i in user_ids if i in self.usernames}

    async def project(self, project_id: int) -> dict[str, Any] | None:
        self.lookups.append(("project", project_id))
        return {"_id": project_id, "path": self.project_path, "ancestor_ids": [2]}

    async def group(self, group_id: int) -> dict[str, Any] | None:
        return {"_id": group_id, "path": "acme", "ancestor_ids": []}

    async def hooks(self, scopes: Sequence[str]) -> list[dict[str, Any]]:
        self.lookups.append(("hooks", tuple(scopes)))
        if self.during_hooks is not None:
            self.during_hooks()
        return [h for h in self.hook_docs if h["scope"] in scopes]

    async def hook(self, hook_id: int) -> dict[str, Any] | None:
        return None

    async def add_downloads(self, counts: list[tuple[str, int, int, datetime]]) -> None:
        self.added.extend(counts)


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None:
        self.events.append(event)


async def test_a_redelivered_event_writes_one_record_and_announces_it_again() -> None:
    store, publisher = FakeStore(), FakePublisher()
    service = AuditService(store, publisher)
    event = PackageYanked(project_id=5, package_id=9, name="demo", version="1.0", reason="bad", actor=ACTOR,
                          ip_address="192.0.2.1")
    assert await service.record(event, "m1", "corr") == "recorded"
    assert await service.record(event, "m1", "corr") == "recorded"
    [record] = store.records.values()
    assert record["event_name"] == "package_yanked" and record["author"] == {"type": "user", "id": 7,
                                                                             "username": "ann"}
    assert (record["entity_path"], record["scopes"], record["ip_address"]) == ("acme/api", ["project:5", "group:2"],
                                                                              "192.0.2.1")
    assert record["target"] == {"name": "demo", "version": "1.0", "file_name": None}
    assert [e.kind for e in publisher.events] == ["audit.recorded", "audit.recorded"]


async def test_a_verdict_published_afresh_by_a_worker_redelivery_is_one_record() -> None:
    store = FakeStore()
    service = AuditService(store, FakePublisher())
    event = DistributionIndexed(file_id=3, project_id=5, filename="demo-1.0.whl", upload_id="u1", name="demo",
                                version="1.0", uploader=ACTOR)
    await service.record(event, "first-message", None)
    await service.record(event, "second-message", None)
    assert len(store.records) == 1


async def test_names_are_looked_up_once_per_ttl_not_once_per_event() -> None:
    """Every upload is an audit event: its author's name and its project's path come from a cache that
    expires, so a rename shows in later records."""
    store = FakeStore()
    now = [0.0]
    service = AuditService(store, FakePublisher(), names_ttl=60)
    for cache in (service._users, service._entities):
        cache._clock = lambda: now[0]
    event = DistributionIndexed(file_id=3, project_id=5, filename="demo-1.0.whl", upload_id="u1", name="demo",
                                version="1.0", uploader=ACTOR)
    await service.record(event, "m1", None)
    await service.record(event.model_copy(update={"upload_id": "u2"}), "m2", None)
    assert store.lookups == [("users", (7,)), ("project", 5)]
    store.usernames, store.project_path = {7: "ann-renamed"}, "acme/renamed"
    now[0] = 61.0
    await service.record(event.model_copy(update={"upload_id": "u3"}), "m3", None)
    assert store.lookups[2:] == [("users", (7,)), ("project", 5)]
    latest = max(store.records.values(), key=lambda r: r["id"])
    assert latest["author"]["username"] == "ann-renamed" and latest["entity_path"] == "acme/renamed"


async def test_hooks_get_what_they_asked_for() -> None:
    store, publisher = FakeStore(), FakePublisher()
    hooks = WebhookService(store, publisher, timeout=1, allow_local=True)
    recorded = AuditRecorded(record={"event_name": "package_published"}, scopes=["project:5", "group:2"])
    assert await hooks.fan_out(recorded, None) == "fanned_out"
    assert publisher.events == [WebhookDelivery(hook_id=1, record={"event_name": "package_published"})]
    assert await hooks.deliver(WebhookDelivery(hook_id=99, record={}), None) == "hook_gone"


async def test_each_scope_s_hooks_are_read_once_until_they_change() -> None:
    store, publisher = FakeStore(), FakePublisher()
    hooks = WebhookService(store, publisher, timeout=1, allow_local=True)
    published = AuditRecorded(record={"event_name": "package_published"}, scopes=["project:5", "group:2"])
    created = AuditRecorded(record={"event_name": "token_created"}, scopes=["project:5", "group:2"])
    for event in (published, published, created):
        await hooks.fan_out(event, None)
    assert [s for kind, s in store.lookups if kind == "hooks"] == [("project:5", "group:2")]
    assert [e.hook_id for e in publisher.events] == [1, 1, 1, 2]  # type: ignore[attr-defined]

    store.hook_docs.append({"_id": 3, "scope": "group:2", "url": "http://z", "events": []})
    hooks.hooks_changed("group:2")  # its creator awaits this before its POST returns
    await hooks.fan_out(published, None)
    assert [s for kind, s in store.lookups if kind == "hooks"][-1] == ("group:2",)  # only that scope again
    assert [e.hook_id for e in publisher.events[-2:]] == [1, 3]  # type: ignore[attr-defined]


async def test_hooks_read_while_they_change_are_used_but_not_kept() -> None:
    store, publisher = FakeStore(), FakePublisher()
    hooks = WebhookService(store, publisher, timeout=1, allow_local=True)
    store.during_hooks = lambda: hooks.hooks_changed("project:5")
    recorded = AuditRecorded(record={"event_name": "package_published"}, scopes=["group:2"])
    await hooks.fan_out(recorded, None)
    store.during_hooks = None
    await hooks.fan_out(recorded, None)
    assert len([kind for kind, _ in store.lookups if kind == "hooks"]) == 2  # the first read was not kept
    await hooks.fan_out(recorded, None)
    assert len([kind for kind, _ in store.lookups if kind == "hooks"]) == 2
    hooks.forget_hooks()  # after a reconnection to the broker
    await hooks.fan_out(recorded, None)
    assert len([kind for kind, _ in store.lookups if kind == "hooks"]) == 3


async def test_downloads_are_summed_per_file_and_package() -> None:
    store = FakeStore()
    event = DownloadsCounted(counts=[DownloadCount(file_id=1, project_id=5, package_id=9, count=2, last_at=100.0),
                                     DownloadCount(file_id=2, project_id=5, package_id=9, count=3, last_at=200.0)])
    await DownloadService(store).counted(event, None)
    assert sorted(store.added) == [("distributions", 1, 2, datetime.fromtimestamp(100, UTC)),
                                   ("distributions", 2, 3, datetime.fromtimestamp(200, UTC)),
                                   ("packages", 9, 5, datetime.fromtimestamp(200, UTC))]
