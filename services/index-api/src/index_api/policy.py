"""Supply-chain policy on the read path (SPEC §9, DESIGN.md "Read" item 3): which levels apply to a scope's
files, evaluated when a page is rendered or a file served, against the precomputed documents.

The compiled levels and statuses live in a `PolicyBook` (every replica's own copy, dropped by
`policy.changed` / `package.status_changed`); a group page needs each project's chain, remembered here per
group until the group's projects or the policies change.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from registry_shared.adapters.policies import PolicyBook, chain_of
from registry_shared.domain.simple import FileEntry
from registry_shared.policy.evaluate import NO_POLICY, EffectivePolicy, Verdict, Withheld, epoch
from registry_shared.policy.status import PackageStatus, Status

from .access import ReadScope
from .metrics import POLICY_WITHHELD
from .ports import ReadRepository


@dataclass(frozen=True)
class PagePolicy:
    """What one name's page in one scope is filtered by: each project's levels and status, and the time."""

    name: str
    default_project: int | None  # a project scope's id (its documents' entries may lack project_id)
    policies: Mapping[int, EffectivePolicy]
    fallback: EffectivePolicy  # the scope's own levels, for a project not (yet) known here
    statuses: Mapping[int, PackageStatus]
    now: float

    def project_of(self, entry: FileEntry) -> int | None:
        return entry.project_id if entry.project_id is not None else self.default_project

    def policy_of(self, entry: FileEntry) -> EffectivePolicy:
        project = self.project_of(entry)
        return self.fallback if project is None else self.policies.get(project, self.fallback)

    def quarantined(self, entry: FileEntry) -> bool:
        status = self.statuses.get(self.project_of(entry) or 0)
        return status is not None and status.status is Status.QUARANTINED

    def page_status(self, entries: list[FileEntry]) -> tuple[str, str] | None:
        """PEP 792 status of the page: the one every project holding the name on it shares, if any set one."""
        projects = {self.project_of(e) for e in entries}
        found = {(s.status.value, s.reason) if (s := self.statuses.get(p or 0)) else None for p in projects}
        only = found.pop() if len(found) == 1 else None
        return only


class ReadPolicy:
    def __init__(self, book: PolicyBook, repo: ReadRepository, clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.repo = repo
        self.clock = clock
        self._group_chains: dict[int, dict[int, tuple[str, ...]]] = {}
        self._scope_chains: dict[tuple[str, int], tuple[str, ...]] = {}

    def drop(self) -> None:
        self.book.drop()
        self.drop_groups()

    def drop_groups(self) -> None:
        """Which groups hold which projects may have changed (a project's first upload, a move)."""
        self._group_chains.clear()
        self._scope_chains.clear()

    async def scope_policy(self, scope: ReadScope) -> EffectivePolicy:
        """The levels of the scope itself: for proxied files and reserved names."""
        chain = self._scope_chains.get((scope.kind, scope.id))
        if chain is None:
            chain = self._scope_chains[(scope.kind, scope.id)] = chain_of(scope.kind, scope.doc)
        return await self.book.effective(chain)

    async def page_policy(self, scope: ReadScope, name: str) -> PagePolicy | None:
        """None when no policy and no status exists anywhere (pages render as they always did)."""
        levels = await self.book.levels()
        statuses = await self.book.statuses_of(name)
        if not levels and not statuses:
            return None
        fallback = await self.scope_policy(scope)
        policies: dict[int, EffectivePolicy] = {}
        if levels:
            if scope.kind == "project":
                policies[scope.id] = fallback
            else:
                for project_id, chain in (await self._chains(scope.id)).items():
                    policies[project_id] = await self.book.effective(chain)
        return PagePolicy(name, scope.id if scope.kind == "project" else None, policies,
                          fallback if levels else NO_POLICY, statuses, self.clock())

    async def file_verdict(self, scope: ReadScope, project_id: int, name: str, version: str, filename: str,
                           upload_time: str | datetime | None) -> Verdict:
        """A local file's download: quarantined (403), blocked (403), cooldown or cutoff (404), or offered."""
        status = await self.book.status(project_id, name)
        if status is not None and status.status is Status.QUARANTINED:
            return Verdict(Withheld.QUARANTINED, status.reason)
        levels = await self.book.levels()
        if not levels:
            return Verdict()
        if scope.kind == "project":
            policy = await self.scope_policy(scope)
        else:
            chain = (await self._chains(scope.id)).get(project_id)
            policy = await self.book.effective(chain) if chain else await self.scope_policy(scope)
        return policy.evaluate(name, version, filename, epoch(upload_time), True, self.clock())

    async def proxied_verdict(self, scope: ReadScope, name: str, version: str, filename: str,
                              upload_time: str | None) -> Verdict:
        policy = await self.scope_policy(scope)
        if not policy:
            return Verdict()
        return policy.evaluate(name, version, filename, epoch(upload_time), False, self.clock())

    async def _chains(self, group_id: int) -> dict[int, tuple[str, ...]]:
        chains = self._group_chains.get(group_id)
        if chains is None:
            generation = self.book.generation
            projects = await self.repo.descendant_projects(group_id)
            chains = {p["_id"]: chain_of("project", p) for p in projects}
            if generation == self.book.generation:
                self._group_chains[group_id] = chains
        return chains


def count_withheld(reasons: Mapping[str, int]) -> None:
    for reason, count in reasons.items():
        POLICY_WITHHELD.labels(reason).inc(count)
