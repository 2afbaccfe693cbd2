"""The policy events (docs/contracts.md): their fields for the audit consumer, their bindings, and whose
answers a publisher waits for."""
from __future__ import annotations

from registry_shared import topology
from registry_shared.events import EVENT_TYPES, PackageStatusChanged, PolicyChanged, parse_event
from registry_shared.replicas import AWAITED_ROLES, ROLE, UPLOAD_ROLE


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


def test_every_index_and_upload_replica_hears_and_answers_them() -> None:
    for kind in (PolicyChanged.kind, PackageStatusChanged.kind):
        assert kind in topology.INDEX_REPLICA_BINDINGS and kind in topology.POLICY_BINDINGS
    assert AWAITED_ROLES[PolicyChanged] == AWAITED_ROLES[PackageStatusChanged] == (ROLE, UPLOAD_ROLE)
