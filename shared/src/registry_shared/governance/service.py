"""Use cases of governance (SPEC §10): protection rules, audit records, hooks. index-api's API, the web
interface and registry-admin call them alike.

Yank lives in yank.py; the cleanup policy's rules in cleanup.py. Each rule change is announced as
`protection_rule.changed` (audit) and `access.changed`, which every index-api and upload-api replica
answers once it dropped its cached rules and decisions, so the next upload sees the rule; each hook created
or deleted as `hooks.changed`, which every metadata-worker answers once it dropped its cached hooks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from ..domain.access import AccessFacts, Principal
from ..errors import NotFound, ParameterInvalid, ParameterMissing
from ..events import AccessChanged, Event, HooksChanged, ProtectionRuleChanged
from ..logging import get_logger
from .protection import DELETE_LEVELS, PUSH_LEVELS, ProtectionRule, check_delete
from .webhooks import check_events, check_url

log = get_logger()
MAX_PATTERN = 255


class GovernanceStore(Protocol):
    """registry_shared.adapters.governance.GovernanceRepository."""

    async def rules(self, project_id: int) -> list[ProtectionRule]: ...
    async def rule(self, project_id: int, rule_id: int) -> ProtectionRule | None: ...
    async def create_rule(self, rule: ProtectionRule) -> ProtectionRule: ...
    async def update_rule(self, rule: ProtectionRule) -> ProtectionRule: ...
    async def delete_rule(self, rule: ProtectionRule) -> None: ...
    async def find_package(self, project_id: int, package_id: int) -> Any: ...
    async def records(self, scope: str | None, *, created_after: datetime | None, created_before: datetime | None,
                      event_name: str | None, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]: ...
    async def hooks(self, scopes: list[str]) -> list[dict[str, Any]]: ...
    async def create_hook(self, scope: str, url: str, token: str, events: list[str]) -> dict[str, Any]: ...
    async def delete_hook(self, scope: str, hook_id: int) -> bool: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


@dataclass(frozen=True)
class Who:
    """Who asked, for the audit record."""

    actor: dict[str, object]
    ip_address: str
    correlation_id: str | None


@dataclass(frozen=True)
class AuditQuery:
    created_after: datetime | None
    created_before: datetime | None
    event_name: str | None
    skip: int
    limit: int


class Governance:
    def __init__(self, store: GovernanceStore, publisher: Publisher, *, allow_local_hooks: bool) -> None:
        self.store = store
        self.publisher = publisher
        self.allow_local_hooks = allow_local_hooks

    # -- protection rules --------------------------------------------------------------------------
    async def rules(self, project: dict[str, Any]) -> list[ProtectionRule]:
        return await self.store.rules(int(project["_id"]))

    async def create_rule(self, project: dict[str, Any], fields: dict[str, Any], who: Who) -> ProtectionRule:
        if "package_name_pattern" not in fields:
            raise ParameterMissing("package_name_pattern")
        if "package_type" not in fields:
            raise ParameterMissing("package_type")
        rule = _rule_with(ProtectionRule(id=0, project_id=int(project["_id"]), package_name_pattern=""), fields)
        created = await self.store.create_rule(rule)
        await self._announce(created, "created", who)
        return created

    async def update_rule(self, project: dict[str, Any], rule_id: int, fields: dict[str, Any],
                          who: Who) -> ProtectionRule:
        rule = await self._rule(project, rule_id)
        updated = await self.store.update_rule(_rule_with(rule, fields))
        await self._announce(updated, "updated", who)
        return updated

    async def delete_rule(self, project: dict[str, Any], rule_id: int, who: Who) -> None:
        rule = await self._rule(project, rule_id)
        await self.store.delete_rule(rule)
        await self._announce(rule, "deleted", who)

    async def check_delete(self, project: dict[str, Any], package_id: int, principal: Principal,
                           facts: AccessFacts) -> None:
        """403 `Package protected.` before an E13 delete of a package a rule protects from this caller."""
        rules = await self.store.rules(int(project["_id"]))
        if not rules:
            return
        package = await self.store.find_package(int(project["_id"]), package_id)
        if package is not None:
            check_delete(rules, package.shown_name, principal, facts)

    async def _rule(self, project: dict[str, Any], rule_id: int) -> ProtectionRule:
        rule = await self.store.rule(int(project["_id"]), rule_id)
        if rule is None:
            raise NotFound("404 Package Protection Rule Not Found")
        return rule

    async def _announce(self, rule: ProtectionRule, action: Literal["created", "updated", "deleted"],
                        who: Who) -> None:
        log.info("protection_rule_changed", project_id=rule.project_id, rule_id=rule.id, action=action)
        await self.publisher.publish(ProtectionRuleChanged(
            project_id=rule.project_id, rule_id=rule.id, action=action,
            rule=rule.to_json(), actor=who.actor, ip_address=who.ip_address), who.correlation_id)
        # Returns once every live index-api and upload-api replica dropped its cached rules.
        await self.publisher.publish(AccessChanged(project_ids=[rule.project_id]), who.correlation_id)

    # -- audit records -----------------------------------------------------------------------------
    async def audit(self, scope: str | None, query: AuditQuery) -> tuple[list[dict[str, Any]], int]:
        return await self.store.records(scope, created_after=query.created_after,
                                        created_before=query.created_before, event_name=query.event_name,
                                        skip=query.skip, limit=query.limit)

    # -- hooks -------------------------------------------------------------------------------------
    async def hooks(self, scope: str) -> list[dict[str, Any]]:
        return await self.store.hooks([scope])

    async def create_hook(self, scope: str, fields: dict[str, Any]) -> dict[str, Any]:
        url = fields.get("url")
        if not isinstance(url, str) or not url:
            raise ParameterMissing("url")
        token = fields.get("token") or ""
        if not isinstance(token, str):
            raise ParameterInvalid("token")
        events = check_events(fields.get("events"))
        await check_url(url, self.allow_local_hooks)
        hook = await self.store.create_hook(scope, url, token, events)
        log.info("hook_created", scope=scope, hook_id=hook["_id"], events=events)  # never the token
        # Returns once every live metadata-worker dropped its cached hooks of the scope.
        await self.publisher.publish(HooksChanged(scope=scope), None)
        return hook

    async def delete_hook(self, scope: str, hook_id: int) -> None:
        if not await self.store.delete_hook(scope, hook_id):
            raise NotFound("404 Hook Not Found")
        await self.publisher.publish(HooksChanged(scope=scope), None)


def _rule_with(rule: ProtectionRule, fields: dict[str, Any]) -> ProtectionRule:
    """`rule` with the given API fields applied, each checked as GitLab's API checks it."""
    changes: dict[str, Any] = {}
    if "package_name_pattern" in fields:
        pattern = fields["package_name_pattern"]
        if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > MAX_PATTERN:
            raise ParameterInvalid("package_name_pattern")
        changes["package_name_pattern"] = pattern.strip()
    if "package_type" in fields and fields["package_type"] != "pypi":
        raise ParameterInvalid("package_type")
    for name, allowed in (("minimum_access_level_for_push", PUSH_LEVELS),
                          ("minimum_access_level_for_delete", DELETE_LEVELS)):
        if name in fields:
            value = fields[name] or None
            if value is not None and value not in allowed:
                raise ParameterInvalid(name)
            changes[name] = value
    return replace(rule, **changes)
