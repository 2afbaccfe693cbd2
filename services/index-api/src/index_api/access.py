"""Scope resolution, credentials and read permission (SPEC §3.1), with short-lived caches.

The rules themselves are the shared pure functions (`registry_shared.domain.access`); this module gathers
their inputs once per scope and caller and remembers them for `auth_cache_ttl` seconds. Every cache here
is dropped when a `token.revoked` or `access.changed` event arrives.
"""
from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

from registry_shared.access_cache import authenticate
from registry_shared.auth import AccessFactsService, CredentialResolver
from registry_shared.domain.access import (
    ANONYMOUS,
    AccessFacts,
    Principal,
    RegistryAccess,
    Visibility,
    authorize_read,
    can_read_packages,
)
from registry_shared.errors import NotFound

from .cache import MISSING, TtlCache
from .ports import ReadRepository


@dataclass(frozen=True)
class ReadScope:
    """A project or group the caller may read packages of, with what the pages depend on."""

    kind: str  # "project" | "group"
    id: int
    title: str
    public: bool  # anonymous callers see exactly this: shared caches may keep it
    doc: dict[str, Any] = field(compare=False, hash=False, repr=False)
    readable: frozenset[int] | None = None  # group: descendant projects this caller may read
    complete: bool = True  # group: `readable` holds every descendant project

    @property
    def project_ids(self) -> list[int]:
        return [self.id] if self.readable is None else sorted(self.readable)

    @property
    def filter(self) -> frozenset[int] | None:
        """The project filter pages depend on; None when nothing is filtered out (shared cache entries)."""
        return None if self.complete else self.readable


@dataclass
class AccessCaches:
    ttl: float
    credentials: TtlCache[tuple[bool, str], object] = field(init=False)  # a Principal, or a cached 401
    scopes: TtlCache[tuple[str, str], dict[str, Any]] = field(init=False)
    facts: TtlCache[tuple[Principal, str, int], AccessFacts] = field(init=False)
    readable: TtlCache[tuple[Principal, int], tuple[frozenset[int], bool, bool]] = field(init=False)
    forwarding: TtlCache[tuple[str, int], bool] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("credentials", "scopes", "facts", "readable", "forwarding"):
            setattr(self, name, TtlCache(self.ttl))

    def clear(self) -> int:
        return sum(c.clear() for c in (self.credentials, self.scopes, self.facts, self.readable, self.forwarding))


def publicly_readable(kind: str, doc: dict[str, Any]) -> bool:
    """Whether an anonymous caller may read packages here (then responses may be cached by anyone)."""
    registry = doc.get("registry_access", "enabled") if kind == "project" else RegistryAccess.ENABLED.value
    return _anonymous_reads(doc["visibility"], registry)


@functools.lru_cache(maxsize=64)
def _anonymous_reads(visibility: str, registry_access: str) -> bool:
    # Asked on every request, and a function of two short enumerations only: worth remembering.
    facts = AccessFacts(visibility=Visibility(visibility), registry_access=RegistryAccess(registry_access))
    return can_read_packages(ANONYMOUS, facts)


class ReadAccess:
    def __init__(self, repo: ReadRepository, resolver: CredentialResolver, facts: AccessFactsService,
                 caches: AccessCaches) -> None:
        self.repo = repo
        self.resolver = resolver
        self.facts = facts
        self.caches = caches

    async def find_scope(self, kind: str, ref: str) -> dict[str, Any]:
        """The project or group named by id or path; 404 before any credential is looked at."""
        key = (kind, ref.lower())
        doc = self.caches.scopes.get(key)
        if doc is MISSING:
            found = await self.repo.find_scope(kind, ref)
            if found is None:  # misses are not cached: a project created a moment ago must be found
                raise NotFound()
            self.caches.scopes.put(key, found)
            doc = found
        return doc

    async def authenticate(self, username: str | None, password: str | None) -> Principal:
        return await authenticate(self.resolver, self.caches.credentials, username, password)

    async def authorize(self, principal: Principal, kind: str, doc: dict[str, Any]) -> ReadScope:
        """403 / 401 / 404 per SPEC §3.1, else the scope as this caller may read it.

        A group is readable by whoever may read its packages, and also by whoever may read packages of
        at least one project under it (as GitLab shows a private group to members of its projects); the
        pages then list only the projects this caller may read.
        """
        facts = await self._facts(principal, kind, doc)
        title = doc.get("name") or doc["path"]
        if kind == "project":
            authorize_read(principal, facts)
            return ReadScope("project", doc["_id"], title, publicly_readable("project", doc), doc)
        readable, complete, public = await self._readable(principal, doc)
        if not readable:
            authorize_read(principal, facts)
        return ReadScope("group", doc["_id"], title, public and publicly_readable("group", doc), doc,
                         readable=readable, complete=complete)

    async def project_facts(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        """This caller's facts about one project, cached like the read path's (E13 decides deletes on them)."""
        return await self._facts(principal, "project", project)

    async def group_facts(self, principal: Principal, group: dict[str, Any]) -> AccessFacts:
        """This caller's facts about one group (the policy and governance routes decide on them)."""
        return await self._facts(principal, "group", group)

    async def _facts(self, principal: Principal, kind: str, doc: dict[str, Any]) -> AccessFacts:
        key = (principal, kind, doc["_id"])
        facts = self.caches.facts.get(key)
        if facts is MISSING:
            if kind == "project":
                facts = await self.facts.for_project(principal, doc)
            else:
                facts = await self.facts.for_group(principal, doc)
            self.caches.facts.put(key, facts)
        return facts

    async def _readable(self, principal: Principal, group: dict[str, Any]) -> tuple[frozenset[int], bool, bool]:
        """(descendant projects the caller may read, whether that is all of them, whether all are public)."""
        key = (principal, group["_id"])
        found = self.caches.readable.get(key)
        if found is not MISSING:
            return found
        projects = await self.repo.descendant_projects(group["_id"])
        facts = await asyncio.gather(*(self._facts(principal, "project", p) for p in projects))
        allowed = [p for p, f in zip(projects, facts, strict=True) if can_read_packages(principal, f)]
        result = (frozenset(p["_id"] for p in allowed), len(allowed) == len(projects),
                  all(publicly_readable("project", p) for p in allowed))
        self.caches.readable.put(key, result)
        return result

    def drop_group_sets(self) -> int:
        """A group's descendants may have changed (a new project's first upload): recompute readable sets."""
        return self.caches.readable.clear()
