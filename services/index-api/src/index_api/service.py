"""Use cases of the read path: pages from the precomputed documents, forwarding, files, core metadata."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiohttp import web

from registry_shared.domain.names import is_valid_name, normalize_name
from registry_shared.errors import PackageNotFound
from registry_shared.logging import get_logger
from registry_shared.policy.evaluate import NO_POLICY, EffectivePolicy, Verdict
from registry_shared.policy.refusals import refuse_download
from registry_shared.records.files import StoredFile

from . import pages
from .access import AccessCaches, ReadScope
from .cache import MISSING, PageCache, PageKey
from .forwarding import forwarding_chain, resolve_forwarding
from .metrics import PAGE_CACHE_HIT, PAGE_CACHE_MISS
from .pages import CachedPage, PageState
from .policy import ReadPolicy, count_withheld
from .ports import Blobs, ReadRepository

log = get_logger()
UPSTREAM_SIMPLE = "https://pypi.org/simple/"


@dataclass(frozen=True)
class ProxiedFile:
    """A file of an upstream page the forwarder served: the names it may install as, and what E3m needs."""

    names: tuple[str, ...]  # normalised: the page's, and the project its filename names
    filename: str
    sha256: str
    size: int | None
    core_metadata_sha256: str | None
    name: str = ""  # the page's (normalised): policy matches it
    version: str = ""
    upload_time: str | None = None  # the upstream's; None when it did not say


class Forwarder(Protocol):
    async def forward(self, scope: ReadScope, name: str, request: web.Request,
                      policy: EffectivePolicy = NO_POLICY) -> web.StreamResponse: ...

    async def lookup_file(self, sha256: str, filename: str) -> ProxiedFile | None: ...

    async def forward_file(self, scope: ReadScope, file: ProxiedFile,
                           request: web.Request) -> web.StreamResponse: ...

    async def forward_metadata(self, scope: ReadScope, file: ProxiedFile,
                               request: web.Request) -> web.StreamResponse: ...


class RedirectForwarder:
    """GitLab's forwarding (`PROXY_MODE=redirect`): a bare 302 to the upstream page, whose file URLs point
    upstream, so no file is ever served here. `PROXY_MODE=cache` uses proxy_client.ProxyForwarder instead."""

    def __init__(self, upstream: str = UPSTREAM_SIMPLE) -> None:
        self.upstream = upstream.rstrip("/") + "/"

    async def forward(self, scope: ReadScope, name: str, request: web.Request,
                      policy: EffectivePolicy = NO_POLICY) -> web.StreamResponse:
        # Files of a redirected page are never served here, so policy cannot filter them: a scope with a
        # cooldown or cutoff (which every upstream file falls under) gets no redirect (fails closed).
        if any(level.has_time_rules for level in policy.levels):
            raise PackageNotFound()
        return web.Response(status=302, headers={"Location": f"{self.upstream}{name}/"})

    async def lookup_file(self, sha256: str, filename: str) -> ProxiedFile | None:
        return None

    async def forward_file(self, scope: ReadScope, file: ProxiedFile, request: web.Request) -> web.StreamResponse:
        raise PackageNotFound()

    async def forward_metadata(self, scope: ReadScope, file: ProxiedFile,
                               request: web.Request) -> web.StreamResponse:
        raise PackageNotFound()


class ReadService:
    def __init__(self, repo: ReadRepository, blobs: Blobs, page_cache: PageCache, caches: AccessCaches,
                 forwarder: Forwarder, base_url: str, redirect_files: bool = False,
                 gateway_min_size: int = 0, policy: ReadPolicy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.blobs = blobs
        self.page_cache = page_cache
        self.caches = caches
        self.forwarder = forwarder
        self.base_url = base_url
        self.redirect_files = redirect_files
        self.gateway_min_size = gateway_min_size
        self.policy = policy
        self.clock = clock

    # -- simple pages ------------------------------------------------------------------------
    async def index_page(self, scope: ReadScope, content_type: str) -> CachedPage:
        key = PageKey(scope.kind, scope.id, None, content_type, scope.filter)
        cached = self._cached(key)
        if cached is not MISSING:
            return cast(CachedPage, cached)
        generation = self.page_cache.generation(key)
        if scope.complete:
            doc = await self.repo.scope_index(scope.kind, scope.id)
            names: list[str] = list(doc.names) if doc else []
        else:  # a group with projects this caller may not read: the union of the readable ones
            names = [n for doc in await self.repo.project_indexes(scope.project_ids) for n in doc.names]
        page = pages.index_page(scope.title, names, self._root(scope), content_type)
        self.page_cache.put(key, page, generation)
        return page

    async def package_page(self, scope: ReadScope, name: str, content_type: str) -> CachedPage | None:
        """The page of `name` (PEP 503-normalised first); None when the scope has no such name.

        A name that exists in the scope only in projects the caller may not read is a 404, never forwarded.
        """
        if not is_valid_name(name):
            raise PackageNotFound()
        normalized = normalize_name(name)
        key = PageKey(scope.kind, scope.id, normalized, content_type, scope.filter)
        found = self._cached(key)
        if found is not MISSING and getattr(found, "expires_at", None) is not None and found.expires_at <= self.clock():
            found = MISSING  # a withheld file has matured since: render again
        if found is MISSING:
            generation = self.page_cache.generation(key)
            found = await self._render_package(scope, normalized, content_type)
            self.page_cache.put(key, found, generation)
        if found is PageState.HIDDEN:
            raise PackageNotFound()
        return None if found is PageState.ABSENT else found

    async def _render_package(self, scope: ReadScope, name: str, content_type: str) -> CachedPage | PageState:
        doc = await self.repo.package_page(scope.kind, scope.id, name)
        if doc is None:
            return PageState.ABSENT
        policy = await self.policy.page_policy(scope, name) if self.policy is not None else None
        page = pages.package_page(doc, self._root(scope), content_type, scope.filter, policy)
        return PageState.HIDDEN if page is None else page

    def _cached(self, key: PageKey) -> Any:
        found = self.page_cache.get(key)
        (PAGE_CACHE_MISS if found is MISSING else PAGE_CACHE_HIT).inc()
        return found

    def _root(self, scope: ReadScope) -> str:
        return pages.scope_root(self.base_url, scope.kind, scope.id)

    # -- names the scope does not have -------------------------------------------------------
    async def forward(self, scope: ReadScope, name: str, request: web.Request) -> web.StreamResponse:
        """Serve a name missing from the scope: upstream when forwarding is on, else 404. A reserved name
        (SPEC §9) is never asked for upstream; the upstream's files are filtered by the scope's policy."""
        normalized = normalize_name(name)
        policy = await self.policy.scope_policy(scope) if self.policy is not None else NO_POLICY
        if policy.reserves(normalized):
            log.info("reserved_name_not_forwarded", scope=f"{scope.kind}:{scope.id}", name=normalized)
            raise PackageNotFound()
        if not await self.forwarding_enabled(scope):
            raise PackageNotFound()
        log.info("name_forwarded", scope=f"{scope.kind}:{scope.id}", name=normalized, policy_levels=len(policy.levels))
        return await self.forwarder.forward(scope, normalized, request, policy)

    async def forward_file(self, scope: ReadScope, sha256: str, filename: str,
                           request: web.Request) -> web.StreamResponse:
        """E3/E9 for a file that is not a local distribution of the scope: a proxied file, or 404."""
        file = await self.proxied_file(scope, sha256, filename)
        return await self.forwarder.forward_file(scope, file, request)

    async def forward_metadata(self, scope: ReadScope, sha256: str, filename: str,
                               request: web.Request) -> web.StreamResponse:
        file = await self.proxied_file(scope, sha256, filename)
        return await self.forwarder.forward_metadata(scope, file, request)

    async def proxied_file(self, scope: ReadScope, sha256: str, filename: str) -> ProxiedFile:
        """A file of a proxied page, served only under the rules of pages: forwarding on for the scope, and
        none of the names it may install as present in the scope (dependency-confusion protection)."""
        if not await self.forwarding_enabled(scope):
            raise PackageNotFound()
        file = await self.forwarder.lookup_file(sha256.lower(), filename)
        if file is None:
            raise PackageNotFound()
        for name in file.names:
            if await self.repo.package_page(scope.kind, scope.id, name) is not None:
                log.warning("proxied_file_refused", scope=f"{scope.kind}:{scope.id}", name=name, filename=filename)
                raise PackageNotFound()
        if self.policy is not None:
            policy = await self.policy.scope_policy(scope)
            if any(policy.reserves(name) for name in file.names):
                raise PackageNotFound()
            self._refuse(await self.policy.proxied_verdict(scope, file.name or file.names[0], file.version,
                                                           file.filename, file.upload_time))
        return file

    @staticmethod
    def _refuse(verdict: Verdict) -> None:
        if not verdict.offered:
            count_withheld({verdict.withheld.value if verdict.withheld else "": 1})
            refuse_download(verdict)

    async def forwarding_enabled(self, scope: ReadScope) -> bool:
        key = (scope.kind, scope.id)
        enabled = self.caches.forwarding.get(key)
        if enabled is MISSING:
            ancestor_ids = scope.doc.get("ancestor_ids", [])
            chain = forwarding_chain(await self.repo.groups(ancestor_ids), ancestor_ids, scope.doc)
            settings = await self.repo.instance_settings()
            enabled = resolve_forwarding(chain, bool(settings.get("forwarding", True)))
            self.caches.forwarding.put(key, enabled)
        return enabled

    # -- files -------------------------------------------------------------------------------
    async def find_file(self, scope: ReadScope, sha256: str, filename: str) -> StoredFile:
        """An installable file of a project the caller may read (lowest project id first), else 404.

        Found files are remembered with the scope's pages (name None: any change in the scope drops them),
        so a delete reaches downloads exactly as it reaches pages; misses are not (forwarding decides them).
        """
        key = PageKey(scope.kind, scope.id, None, f"file {sha256.lower()}/{filename}", scope.filter)
        found = self.page_cache.get(key)
        if found is not MISSING:
            return cast(StoredFile, found)
        generation = self.page_cache.generation(key)
        file = await self.repo.installable_file(scope.project_ids, sha256.lower(), filename)
        if file is None:
            raise PackageNotFound()
        self.page_cache.put(key, file, generation)
        return file

    async def check_file(self, scope: ReadScope, file: StoredFile) -> None:
        """Refuse a local file policy withholds (SPEC §9): a lock file cannot bypass what pages hide."""
        if self.policy is not None:
            self._refuse(await self.policy.file_verdict(scope, file.project_id, file.name, file.version,
                                                        file.filename, file.created_at))

    async def open_file(self, file: StoredFile, offset: int, length: int) -> AsyncIterator[bytes]:
        chunks = await self.blobs.open(file.object_key, offset, length)
        if chunks is None:
            log.warning("file_object_missing", file_id=file.id, object_key=file.object_key)
            raise PackageNotFound()
        return chunks

    async def file_url(self, file: StoredFile) -> str:
        return await self.blobs.presigned_url(file.object_key, file.filename)

    def gateway_sends(self, file: StoredFile) -> bool:
        """Whether a gateway able to fetch from S3 should send this file instead of index-api: large
        files only (small ones are faster from index-api's in-memory cache than through a second hop)."""
        return file.size >= max(self.gateway_min_size, 1)

    async def gateway_url(self, file: StoredFile) -> str:
        return await self.blobs.gateway_url(file.object_key)

    async def core_metadata(self, file: StoredFile) -> tuple[bytes, str]:
        """(METADATA bytes, their sha256) when the worker stored them, else 404."""
        digest = file.metadata_sha256
        data = await self.repo.core_metadata(file.id) if digest else None
        if data is None or not digest:
            raise PackageNotFound()
        return data, digest
