"""Governance consumers' use cases (SPEC §10): audit records, webhook deliveries, download counts.

- `AuditService.record`: one append-only record per domain event, written once per AMQP `message_id`
  (the record's `_id`), so a redelivered event writes nothing twice; then `audit.recorded` (again on a
  redelivery, so a crash between the two loses no hook delivery: deliveries are at least once).
- `WebhookService`: fans an `audit.recorded` out as one `webhook.delivery` per matching hook (each scope's
  hooks kept in memory until `hooks.changed`), and delivers each (10 s timeout; a non-2xx or no answer
  raises, and the consumer retries it with backoff).
- `DownloadService`: adds a batch of counted downloads to the file and package documents.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from registry_shared.access_cache import MISSING, TtlCache
from registry_shared.events import AuditRecorded, DownloadsCounted, Event, WebhookDelivery
from registry_shared.governance.audit import author, draft_of, record_json
from registry_shared.governance.webhooks import UrlBlocked, check_url, delivery, wants
from registry_shared.logging import get_logger

log = get_logger()
NAMES_TTL_S = 60.0  # how long a user's name or an entity's path is reused in audit records


class AuditStore(Protocol):
    async def insert_record(self, message_id: str, record: dict[str, Any], scopes: list[str]) -> dict[str, Any]: ...
    async def user_names(self, user_ids: Sequence[int]) -> dict[int, str]: ...
    async def project(self, project_id: int) -> dict[str, Any] | None: ...
    async def group(self, group_id: int) -> dict[str, Any] | None: ...
    async def hooks(self, scopes: Sequence[str]) -> list[dict[str, Any]]: ...
    async def hook(self, hook_id: int) -> dict[str, Any] | None: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


class HookFailed(Exception):
    """The hook answered non-2xx or not at all: retried later."""


class AuditService:
    """Writes audit records. The names a record shows (its author's username, its entity's path and
    ancestors) are looked up once per `names_ttl` seconds per user or entity, not once per event: an upload
    is an event, and these rarely change (a rename shows in records within `names_ttl`)."""

    def __init__(self, store: AuditStore, publisher: Publisher, names_ttl: float = NAMES_TTL_S) -> None:
        self.store = store
        self.publisher = publisher
        self._users: TtlCache[int, str | None] = TtlCache(names_ttl)
        self._entities: TtlCache[tuple[str, int], dict[str, Any] | None] = TtlCache(names_ttl)

    async def record(self, event: Event, message_id: str, correlation_id: str | None) -> str:
        draft = draft_of(event)
        if draft is None:
            return "skipped"
        user_id = draft.actor.get("user_id")
        ids = [user_id] if isinstance(user_id, int) else []
        if draft.entity_type == "user":
            ids.append(draft.entity_id)
        names = await self._user_names(ids)
        path, scopes = await self._entity(draft.entity_type, draft.entity_id, names)
        record = {"event_name": draft.event_name, "author": author(draft.actor, names),
                  "entity_type": draft.entity_type, "entity_id": draft.entity_id, "entity_path": path,
                  "target": draft.target, "details": draft.details, "ip_address": draft.ip_address or None,
                  "correlation_id": correlation_id, "created_at": datetime.now(UTC)}
        stored = await self.store.insert_record(draft.key or message_id, record, scopes)
        await self.publisher.publish(AuditRecorded(record=record_json(stored), scopes=scopes), correlation_id)
        log.info("audit_recorded", event_name=draft.event_name, record_id=stored.get("id"),
                 entity=f"{draft.entity_type}:{draft.entity_id}")
        return "recorded"

    async def _entity(self, kind: str, entity_id: int, names: dict[int, str]) -> tuple[str | None, list[str]]:
        """The entity's path, and the scopes whose audit API and hooks see the record."""
        if kind == "user":
            return names.get(entity_id), []
        doc = self._entities.get((kind, entity_id))
        if doc is MISSING:
            doc = await (self.store.project(entity_id) if kind == "project" else self.store.group(entity_id))
            self._entities.put((kind, entity_id), doc)
        ancestors = [f"group:{g}" for g in (doc or {}).get("ancestor_ids") or []]
        return (doc or {}).get("path"), [f"{kind}:{entity_id}", *ancestors]


    async def _user_names(self, user_ids: list[int]) -> dict[int, str]:
        known = {user_id: self._users.get(user_id) for user_id in user_ids}
        missing = [user_id for user_id, name in known.items() if name is MISSING]
        found = await self.store.user_names(missing) if missing else {}
        for user_id in missing:
            name = known[user_id] = found.get(user_id)
            self._users.put(user_id, name)
        return {user_id: name for user_id, name in known.items() if isinstance(name, str)}


class WebhookService:
    """Fans out and delivers. Each scope's hooks are kept once read (most scopes have none), until a
    `hooks.changed` for the scope (`hooks_changed`; awaited by whoever created or deleted a hook) or a
    reconnection to the broker (`forget_hooks`) drops them."""

    def __init__(self, store: AuditStore, publisher: Publisher, *, timeout: float, allow_local: bool,
                 remember_scopes: int = 10_000) -> None:
        self.store = store
        self.publisher = publisher
        self.timeout = timeout
        self.allow_local = allow_local
        self.remember_scopes = remember_scopes
        self._session: aiohttp.ClientSession | None = None
        self._hooks: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._changes = 0  # hooks.changed seen: a read that one overtook is used, not kept

    async def fan_out(self, event: AuditRecorded, correlation_id: str | None) -> str:
        name = str(event.record.get("event_name", ""))
        hooks = [h for h in await self._hooks_of(event.scopes) if wants(list(h.get("events") or []), name)]
        for hook in hooks:
            await self.publisher.publish(WebhookDelivery(hook_id=int(hook["_id"]), record=event.record),
                                         correlation_id)
        return "fanned_out" if hooks else "no_hooks"

    async def deliver(self, event: WebhookDelivery, correlation_id: str | None) -> str:
        hook = await self.store.hook(event.hook_id)
        if hook is None:
            return "hook_gone"
        try:
            await check_url(str(hook["url"]), self.allow_local)
        except UrlBlocked as exc:
            log.warning("webhook_blocked", hook_id=event.hook_id, reason=exc.message)
            return "blocked"
        body, headers = delivery(event.record, str(hook.get("token") or ""))
        session = self._client()
        try:
            async with session.post(str(hook["url"]), data=body, headers=headers, allow_redirects=False) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HookFailed(f"hook {event.hook_id}: {type(exc).__name__}") from exc
        if not 200 <= status < 300:
            raise HookFailed(f"hook {event.hook_id} answered {status}")
        log.info("webhook_delivered", hook_id=event.hook_id, status=status, event_name=event.record.get("event_name"))
        return "delivered"

    def hooks_changed(self, scope: str) -> None:
        self._changes += 1
        self._hooks.pop(scope, None)

    def forget_hooks(self) -> None:
        self._changes += 1
        self._hooks.clear()

    async def _hooks_of(self, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """The hooks of `scopes`, oldest first; those not kept are read (one query) and kept."""
        missing = [scope for scope in scopes if scope not in self._hooks]
        found: dict[str, list[dict[str, Any]]] = {scope: [] for scope in missing}
        if missing:
            changes = self._changes
            for hook in await self.store.hooks(missing):
                found.setdefault(str(hook.get("scope")), []).append(hook)
            if changes == self._changes:
                for scope in missing:
                    self._hooks[scope] = found[scope]
                while len(self._hooks) > self.remember_scopes:
                    self._hooks.popitem(last=False)
        hooks = [hook for scope in scopes for hook in found.get(scope, self._hooks.get(scope, []))]
        return sorted(hooks, key=lambda hook: hook["_id"])

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class CountStore(Protocol):
    async def add_downloads(self, counts: list[tuple[str, int, int, datetime]]) -> None: ...


class DownloadService:
    def __init__(self, store: CountStore) -> None:
        self.store = store

    async def counted(self, event: DownloadsCounted, _correlation_id: str | None) -> str:
        """Sums per file and per package, then one `$inc` per document."""
        totals: dict[tuple[str, int], list[Any]] = {}
        for item in event.counts:
            last = datetime.fromtimestamp(item.last_at, UTC)
            keys = [("distributions", item.file_id)]
            if item.package_id is not None:
                keys.append(("packages", item.package_id))
            for key in keys:
                entry = totals.setdefault(key, [0, last])
                entry[0] += item.count
                entry[1] = max(entry[1], last)
        await self.store.add_downloads([(c, i, n, last) for (c, i), (n, last) in totals.items()])
        return "counted"
