"""Audit records (SPEC §10): one append-only record per domain event, built by a table from event kind to
builder, so a new event kind is one line. The consumer (metadata-worker) resolves names and paths and
writes each record once per AMQP `message_id`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..events import (
    DistributionIndexed,
    DistributionRejected,
    Event,
    PackageDeleted,
    PackageStatusChanged,
    PackageUnyanked,
    PackageYanked,
    PolicyChanged,
    ProtectionRuleChanged,
    TokenCreated,
    TokenRevoked,
)

EVENT_NAMES = ("package_published", "package_rejected", "package_deleted", "package_file_deleted",
               "package_yanked", "package_unyanked", "package_status_changed", "protection_rule_created",
               "protection_rule_updated", "protection_rule_deleted", "policy_updated", "token_created",
               "token_revoked")


@dataclass(frozen=True)
class Draft:
    """A record before the consumer resolves the author's name and the entity's path."""

    event_name: str
    entity_type: str  # "project" | "group" | "user"
    entity_id: int
    actor: dict[str, Any] = field(default_factory=dict)  # Principal.log_fields()
    target: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ip_address: str = ""
    # What makes two deliveries one record, when not the AMQP message id: a verdict is published afresh
    # (a new message id) when the worker redelivers an upload, so it is keyed by the upload.
    key: str | None = None


def _target(name: str, version: str = "", file_name: str | None = None) -> dict[str, Any]:
    return {"name": name, "version": version or None, "file_name": file_name}


def _published(e: DistributionIndexed) -> Draft:
    return Draft("package_published", "project", e.project_id, e.uploader, _target(e.name, e.version, e.filename),
                 {"file_id": e.file_id, "package_id": e.package_id}, e.ip_address,
                 f"published:{e.file_id}:{e.upload_id}" if e.upload_id else None)


def _rejected(e: DistributionRejected) -> Draft:
    return Draft("package_rejected", "project", e.project_id, e.uploader, _target(e.name, e.version, e.filename),
                 {"reason": e.reason}, e.ip_address, f"rejected:{e.file_id}:{e.upload_id}" if e.upload_id else None)


def _deleted(e: PackageDeleted) -> Draft:
    name = "package_deleted" if e.whole_package else "package_file_deleted"
    file_name = None if e.whole_package or len(e.filenames) != 1 else e.filenames[0]
    return Draft(name, "project", e.project_id, e.actor, _target(e.name, e.version, file_name),
                 {"package_id": e.package_id, "file_names": e.filenames}, e.ip_address)


def _yanked(e: PackageYanked) -> Draft:
    return Draft("package_yanked", "project", e.project_id, e.actor, _target(e.name, e.version),
                 {"package_id": e.package_id, "reason": e.reason or None}, e.ip_address)


def _unyanked(e: PackageUnyanked) -> Draft:
    return Draft("package_unyanked", "project", e.project_id, e.actor, _target(e.name, e.version),
                 {"package_id": e.package_id}, e.ip_address)


def _status(e: PackageStatusChanged) -> Draft:
    return Draft("package_status_changed", "project", e.project_id, e.actor, _target(e.name),
                 {"status": e.status, "reason": e.reason or None}, e.ip_address)


def _rule(e: ProtectionRuleChanged) -> Draft:
    return Draft(f"protection_rule_{e.action}", "project", e.project_id, e.actor, None,
                 {"rule_id": e.rule_id, "rule": e.rule}, e.ip_address)


def _policy(e: PolicyChanged) -> Draft:
    return Draft("policy_updated", e.scope_type, e.scope_id or 0, e.actor, None, {"document": e.policy}, e.ip_address)


def _token_owner(e: TokenCreated | TokenRevoked) -> tuple[str, int]:
    if e.project_id is not None:
        return "project", e.project_id
    if e.group_id is not None:
        return "group", e.group_id
    return "user", e.user_id or 0


def _token(name: str) -> Callable[[Any], Draft | None]:
    def build(e: TokenCreated | TokenRevoked) -> Draft | None:
        if e.token_kind == "job":  # a finished CI job's token is not a credential anyone manages
            return None
        if e.user_id is None and e.project_id is None and e.group_id is None:
            return None  # a revocation repeated, announced only to drop caches
        kind, owner = _token_owner(e)
        details: dict[str, Any] = {"token_kind": e.token_kind, "token_id": e.token_id}
        if isinstance(e, TokenCreated):
            details.update(name=e.name, scopes=e.scopes)
        return Draft(name, kind, owner, e.actor, None, details, e.ip_address)
    return build


BUILDERS: dict[type[Event], Callable[[Any], Draft | None]] = {
    DistributionIndexed: _published,
    DistributionRejected: _rejected,
    PackageDeleted: _deleted,
    PackageYanked: _yanked,
    PackageUnyanked: _unyanked,
    PackageStatusChanged: _status,
    ProtectionRuleChanged: _rule,
    PolicyChanged: _policy,
    TokenCreated: _token("token_created"),
    TokenRevoked: _token("token_revoked"),
}


def draft_of(event: Event) -> Draft | None:
    """The record an event makes, or None (a kind or a case not audited)."""
    builder = BUILDERS.get(type(event))
    return builder(event) if builder is not None else None


def author(actor: dict[str, Any], usernames: dict[int, str]) -> dict[str, Any]:
    """`{id, username}` for a user (a job: its user, with the job's id), the deploy token, or the system
    (registry-admin, which has no principal)."""
    kind = actor.get("principal")
    user_id = actor.get("user_id")
    if kind == "deploy_token":
        return {"type": "deploy_token", "id": actor.get("credential_id"), "username": None}
    if kind in ("user", "job") and isinstance(user_id, int):
        found = {"type": kind, "id": user_id, "username": usernames.get(user_id)}
        if kind == "job":
            found["job_id"] = actor.get("credential_id")
        return found
    return {"type": "system", "id": None, "username": "registry-admin"}


def record_json(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record as the API and webhooks show it (times in ISO 8601 UTC)."""
    shown = dict(record)
    created = shown.get("created_at")
    if isinstance(created, datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        shown["created_at"] = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{created.microsecond // 1000:03d}Z"
    return shown
