"""Who sees what: the same decisions as the API (`registry_shared.domain.access`, SPEC §3.1), gathered
for pages. A project or group the visitor may not read packages of is a 404 here, whatever the reason,
so a private project's existence is never revealed.

Token states, access facts and path lookups are cached for `AUTH_CACHE_TTL` seconds; a `token.revoked`
or `access.changed` event drops them (consumers.py), and registry-admin waits for this replica's answer,
so a session whose token was revoked is signed out on its very next request. Package pages are cached
until an `index.changed` names their project and package (cache.py), so reading the interface costs
MongoDB nothing while nothing changes.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_shared.access_cache import MISSING, TtlCache
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.domain.access import (
    AccessFacts,
    Principal,
    Role,
    authorize_delete,
    authorize_manage,
    can_delete,
    can_manage,
    can_read_packages,
)
from registry_shared.errors import NotFound, Unauthorized

from .adapters.mongo import MongoCatalog
from .cache import PackagePages


@dataclass
class WebCaches:
    ttl: float
    tokens: TtlCache[int, Principal | None] = field(init=False)  # token id -> its user; None: revoked or expired
    facts: TtlCache[tuple[Principal, str, int], AccessFacts] = field(init=False)
    paths: TtlCache[tuple[str, str], dict[str, Any]] = field(init=False)  # (kind, lower-case path) -> document
    usernames: TtlCache[int, str] = field(init=False)
    pages: PackagePages[Any] = field(init=False)  # service.PackageView without the visitor's rights

    def __post_init__(self) -> None:
        self.tokens = TtlCache(self.ttl)
        self.facts = TtlCache(self.ttl)
        self.paths = TtlCache(self.ttl)
        self.usernames = TtlCache(self.ttl)
        self.pages = PackagePages()

    def clear(self) -> int:
        """Credentials or memberships changed: forget every decision (pages hold none)."""
        return self.tokens.clear() + self.facts.clear() + self.paths.clear() + self.usernames.clear()


@dataclass(frozen=True)
class Readable:
    """What a visitor may read packages of."""

    projects: list[dict[str, Any]]
    groups: list[dict[str, Any]]  # groups holding at least one of `projects`, or readable themselves


class WebAccess:
    def __init__(self, catalog: MongoCatalog, resolver: CredentialResolver, facts: AccessFactsService,
                 caches: WebCaches) -> None:
        self.catalog = catalog
        self.resolver = resolver
        self.facts_service = facts
        self.caches = caches

    async def token_principal(self, token_id: int) -> Principal | None:
        """The user a session's token stands for; None once it is revoked or expired."""
        cached = self.caches.tokens.get(token_id)
        if cached is MISSING:
            try:
                cached = await self.resolver.personal_token(token_id)
            except Unauthorized:
                cached = None
            self.caches.tokens.put(token_id, cached)
        return cached

    async def facts(self, principal: Principal, kind: str, doc: dict[str, Any]) -> AccessFacts:
        key = (principal, kind, int(doc["_id"]))
        found = self.caches.facts.get(key)
        if found is MISSING:
            if kind == "project":
                found = await self.facts_service.for_project(principal, doc)
            else:
                found = await self.facts_service.for_group(principal, doc)
            self.caches.facts.put(key, found)
        return found

    async def readable_projects(self, principal: Principal, projects: Sequence[dict[str, Any]]
                                ) -> list[dict[str, Any]]:
        facts = await asyncio.gather(*(self.facts(principal, "project", p) for p in projects))
        return [p for p, f in zip(projects, facts, strict=True) if can_read_packages(principal, f)]

    async def readable(self, principal: Principal) -> Readable:
        projects = await self.readable_projects(principal, await self.catalog.all_projects())
        holding = {gid for p in projects for gid in p.get("ancestor_ids", [])}
        groups = await self.catalog.all_groups()
        group_facts = await asyncio.gather(*(self.facts(principal, "group", g) for g in groups))
        shown = [g for g, f in zip(groups, group_facts, strict=True)
                 if g["_id"] in holding or can_read_packages(principal, f)]
        return Readable(projects, shown)

    async def find_by_path(self, kind: str, path: str) -> dict[str, Any] | None:
        key = (kind, path.strip("/").lower())
        cached = self.caches.paths.get(key)
        if cached is not MISSING:
            return cached
        found = await self.catalog.find_by_path(kind, path)
        if found is not None:  # misses are not cached: a project created a moment ago must be found
            self.caches.paths.put(key, found)
        return found

    async def usernames(self, user_ids: Sequence[int]) -> dict[int, str]:
        found = {uid: name for uid in user_ids if (name := self.caches.usernames.get(uid)) is not MISSING}
        missing = [uid for uid in user_ids if uid not in found]
        if missing:
            for uid, name in (await self.catalog.usernames(missing)).items():
                self.caches.usernames.put(uid, name)
                found[uid] = name
        return found

    async def project(self, principal: Principal, path: str) -> dict[str, Any]:
        """The project at `path` if this visitor may read its packages, else 404."""
        project = await self.find_by_path("project", path)
        if project is None or not can_read_packages(principal, await self.facts(principal, "project", project)):
            raise NotFound()
        return project

    async def scope(self, principal: Principal, path: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        """(kind, document, readable projects) of the group or project at `path`; 404 when the visitor may
        read nothing there. A group shows the projects under it this visitor may read."""
        project = await self.find_by_path("project", path)
        if project is not None:
            return "project", project, [await self.project(principal, path)]
        group = await self.find_by_path("group", path)
        if group is None:
            raise NotFound()
        under = [p for p in await self.catalog.all_projects() if group["_id"] in p.get("ancestor_ids", [])]
        projects = await self.readable_projects(principal, under)
        if not projects and not can_read_packages(principal, await self.facts(principal, "group", group)):
            raise NotFound()
        return "group", group, projects

    async def may_manage(self, principal: Principal, project: dict[str, Any]) -> bool:
        """Whether the page offers this visitor the maintainer's forms: delete and yank ask `can_delete`, the
        status `can_manage` at maintainer with an `api` token, as the API; for a user both say the same."""
        if principal.anonymous:
            return False
        facts = await self.facts(principal, "project", project)
        return can_delete(principal, facts) and can_manage(principal, facts, Role.MAINTAINER, write=True)

    async def authorize_delete(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        """Delete and yank, as the API's (401 / 404 / 403); the facts, for the protection rules."""
        facts = await self.facts(principal, "project", project)
        authorize_delete(principal, facts)
        return facts

    async def authorize_manage(self, principal: Principal, project: dict[str, Any]) -> None:
        """A package's status, as `PUT .../packages/pypi/status/:name` (maintainer and above, `api`)."""
        authorize_manage(principal, await self.facts(principal, "project", project), Role.MAINTAINER, write=True)
