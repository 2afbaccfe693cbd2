"""The policy events (docs/contracts.md): their fields for the audit consumer, their bindings, and whose
answers a publisher waits for."""
from __future__ import annotations

import time

import pytest

from registry_shared import replicas, topology
from registry_shared.events import EVENT_TYPES, PackageStatusChanged, PolicyChanged, parse_event
from registry_shared.replicas import AWAITED_ROLES, ROLE, UPLOAD_ROLE, WEB_ROLE


def test_policy_changed_round_trips_with_scope_actor_and_document() -> None:
    event = PolicyChanged(scope_type="group", scope_id=4, actor={"principal": "user", "user_id": 1,
                                                                 "credential_id": 8},
                          ip_address="10.0.0.7", policy={"cooldown_hours": 72})
    parsed = parse_event("policy.changed", event.model_dump_json().encode())
    assert parsed == event and EVENT_TYPES["policy.changed"] is PolicyChanged
    cli = PolicyChanged(scope_type="instance", actor={"principal": "admin_cli"})
    assert (cli.scope_id, cli.ip_address) == (None, "")


def test_package_status_changed_round_trips() -> None:
    event = PackageStatusChanged(project_id=3, name="pol-local", status="quarantined", reason="MAL-1",
                                 actor={"principal": "user"}, ip_address="::1")
    assert parse_event("package.status_changed", event.model_dump_json().encode()) == event


def test_every_index_upload_and_web_replica_hears_and_answers_them() -> None:
    for kind in (PolicyChanged.kind, PackageStatusChanged.kind):
        assert kind in topology.INDEX_REPLICA_BINDINGS and kind in topology.POLICY_BINDINGS
    assert AWAITED_ROLES[PolicyChanged] == AWAITED_ROLES[PackageStatusChanged] == (ROLE, UPLOAD_ROLE, WEB_ROLE)


class _Broker:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, event: object, correlation_id: object, routing_key: object = None,
                      **_fields: object) -> None:
        self.published.append(type(event).__name__)


class _Registry:
    async def live(self, roles: tuple[str, ...]) -> set[str]:
        return {"silent-replica"}  # alive, never answers


async def test_a_policy_change_waits_longer_than_an_upload_for_busy_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(replicas.MIN_WAIT_S, PolicyChanged, 0.3)
    announcer = replicas.Announcer(_Broker(), _Registry(), timeout=0.01)  # type: ignore[arg-type]
    announcer.reply_to = "q"
    started = time.monotonic()
    await announcer.publish(PolicyChanged(scope_type="instance"), None)
    assert time.monotonic() - started >= 0.3  # bounded: a silent replica delays it, never blocks it
