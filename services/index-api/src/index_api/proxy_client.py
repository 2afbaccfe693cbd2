"""Forwarding through the proxy service (SPEC §6, `PROXY_MODE=cache`): the `Forwarder` that asks the
proxy at PROXY_URL for pages and files of names a scope does not have.

The proxy already writes every file URL into the requesting scope, so nothing is rewritten here; this module
only adds what index-api owns: the scope's cache headers, conditional requests and Range checks. ReadService
has run the permission checks, the forwarding setting and the "name absent from the scope" rule first.
"""
from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from registry_shared.domain.filenames import version_of
from registry_shared.domain.simple import HTML_TYPE, JSON_TYPE, FileEntry, choose_content_type
from registry_shared.errors import DomainError, PackageNotFound
from registry_shared.logging import get_logger
from registry_shared.policy.evaluate import NO_POLICY, EffectivePolicy, filter_entries
from registry_shared.web.app import CORRELATION_HEADER, CORRELATION_ID

from .access import ReadScope
from .conditional import etag_matches, requested_range
from .pages import CachedPage, render_files, scope_root
from .policy import count_withheld
from .responses import file_headers, metadata_response, simple_response
from .service import ProxiedFile

log = get_logger()
CHUNK = 256 * 1024


class ProxyUnavailable(DomainError):
    """The proxy (or the upstream behind it, with nothing cached) cannot answer."""

    status = 502

    def default_message(self) -> str:
        return "502 Bad Gateway"


def proxy_session() -> aiohttp.ClientSession:
    """Cluster-internal: no proxy variables. A page may wait for one upstream fetch (the proxy's own
    timeout bounds it); a file streams as long as bytes keep coming."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=300),
                                 trust_env=False)


class ProxyForwarder:
    def __init__(self, session: aiohttp.ClientSession, proxy_url: str, base_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.session = session
        self.proxy_url = proxy_url.rstrip("/")
        self.base_url = base_url
        self.clock = clock
        self._filtered_pages: dict[tuple[object, ...], tuple[EffectivePolicy, CachedPage]] = {}

    async def forward(self, scope: ReadScope, name: str, request: web.Request,
                      policy: EffectivePolicy = NO_POLICY) -> web.StreamResponse:
        content_type = choose_content_type(request.headers.get("Accept")) or HTML_TYPE
        params = {"scope": f"{scope.kind}:{scope.id}"}
        # Under a policy the page is asked for as JSON (upload times, versions) and filtered here (SPEC §9).
        asked = JSON_TYPE if policy else content_type
        try:
            async with self.session.get(f"{self.proxy_url}/pages/{quote(name)}", params=params,
                                        headers=self._headers(request, Accept=asked)) as resp:
                self._check(resp)
                page = CachedPage(await resp.read(), resp.headers["ETag"], resp.headers["Content-Type"])
        except (aiohttp.ClientError, TimeoutError, KeyError) as exc:
            raise self._unavailable(exc) from exc
        if policy:
            page = self._filtered(scope, name, page, policy, content_type)
        return simple_response(request, page, scope.public)

    def _filtered(self, scope: ReadScope, name: str, page: CachedPage, policy: EffectivePolicy,
                  content_type: str) -> CachedPage:
        """The proxy's JSON page with the files the scope's policy withholds now left out, in the asked
        format; remembered by the proxy's ETag and the policy until the next withheld file matures."""
        now = self.clock()
        key = (scope.kind, scope.id, name, content_type, page.etag, id(policy))
        found = self._filtered_pages.get(key)
        if found is not None and found[0] is policy and (found[1].expires_at is None or found[1].expires_at > now):
            return found[1]
        try:
            files, versions = proxied_entries(json.loads(page.body))
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unavailable(exc) from exc
        filtered = filter_entries(name, files, lambda _entry: policy, False, now)
        count_withheld(filtered.withheld)
        root = scope_root(self.base_url, scope.kind, scope.id)
        rendered = render_files(name, filtered.kept, versions, len(filtered.kept) != len(files), root, content_type,
                                expires_at=filtered.matures_at)
        if len(self._filtered_pages) >= 2_000:
            self._filtered_pages.pop(next(iter(self._filtered_pages)))
        self._filtered_pages[key] = (policy, rendered)
        return rendered

    async def lookup_file(self, sha256: str, filename: str) -> ProxiedFile | None:
        """The proxied file behind `/files/{sha256}/{filename}`, or None when no proxied page lists it."""
        try:
            async with self.session.get(f"{self.proxy_url}/lookup/{sha256}/{quote(filename)}") as resp:
                if resp.status == 404:
                    return None
                self._check(resp)
                doc: dict[str, Any] = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._unavailable(exc) from exc
        return ProxiedFile(names=tuple(doc["names"]), filename=doc["filename"], sha256=doc["sha256"],
                           size=doc.get("size"), core_metadata_sha256=doc.get("core_metadata_sha256"),
                           name=doc.get("name") or "", version=doc.get("version") or "",
                           upload_time=doc.get("upload_time"))

    async def forward_file(self, scope: ReadScope, file: ProxiedFile, request: web.Request) -> web.StreamResponse:
        headers = file_headers(file.sha256, file.filename, scope.public)
        if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
            return web.Response(status=304, headers=headers)
        byte_range = None
        if file.size is not None:
            byte_range = requested_range(request.headers.get("Range"), request.headers.get("If-Range"),
                                         file.size, headers["ETag"])
        if request.method == "HEAD":  # never starts an upstream download
            response = web.StreamResponse(headers=headers)
            if file.size is not None:
                response.content_length = file.size
            return response
        extra = {"Range": f"bytes={byte_range.start}-{byte_range.end}"} if byte_range else {}
        url = f"{self.proxy_url}/files/{file.sha256}/{quote(file.filename)}"
        try:
            resp = await self.session.get(url, headers=self._headers(request, **extra))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        try:
            self._check(resp)
            return await _relay(request, resp, headers)
        finally:
            resp.release()

    async def forward_metadata(self, scope: ReadScope, file: ProxiedFile,
                               request: web.Request) -> web.StreamResponse:
        if not file.core_metadata_sha256:  # not advertised, so not served
            raise PackageNotFound()
        url = f"{self.proxy_url}/files/{file.sha256}/{quote(file.filename)}.metadata"
        try:
            async with self.session.get(url, headers=self._headers(request)) as resp:
                self._check(resp)
                data = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        return metadata_response(request, data, file.core_metadata_sha256, scope.public)

    @staticmethod
    def _headers(request: web.Request, **extra: str) -> dict[str, str]:
        correlation_id = request.get(CORRELATION_ID)
        return {**({CORRELATION_HEADER: correlation_id} if correlation_id else {}), **extra}

    @staticmethod
    def _check(resp: aiohttp.ClientResponse) -> None:
        if resp.status == 404:
            raise PackageNotFound()
        if resp.status not in (200, 206):
            log.warning("proxy_answered_error", status=resp.status, url=str(resp.url.with_query(None)))
            raise ProxyUnavailable()

    @staticmethod
    def _unavailable(exc: BaseException) -> ProxyUnavailable:
        log.warning("proxy_unreachable", error=type(exc).__name__)
        return ProxyUnavailable()


async def _relay(request: web.Request, resp: aiohttp.ClientResponse, headers: dict[str, str]) -> web.StreamResponse:
    """Stream the proxy's answer to the client. If the proxy cuts the body short (an upstream file whose hash
    did not match, a broken upstream), the client's connection is cut too: it never sees a complete file."""
    if resp.status == 206 and "Content-Range" in resp.headers:
        headers["Content-Range"] = resp.headers["Content-Range"]
    response = web.StreamResponse(status=resp.status, headers=headers)
    if resp.content_length is not None:
        response.content_length = resp.content_length
    await response.prepare(request)
    try:
        async for chunk in _chunks(resp):
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        log.info("download_aborted", filename=headers.get("Content-Disposition"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("proxied_download_cut", error=type(exc).__name__)
        if request.transport is not None:
            request.transport.abort()  # aiohttp's own write_eof then fails quietly on the closed transport
    return response


async def _chunks(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for chunk in resp.content.iter_chunked(CHUNK):
        yield chunk


def proxied_entries(doc: dict[str, Any]) -> tuple[list[FileEntry], list[str]]:
    """The files and versions of a PEP 691 page the proxy rendered (every file has a sha256)."""
    files = []
    for item in doc["files"]:
        meta = item.get("core-metadata")
        yanked = item.get("yanked", False)
        files.append(FileEntry(
            filename=item["filename"], sha256=item["hashes"]["sha256"], size=item.get("size"),
            upload_time=item.get("upload-time"),
            version=version_of(item["filename"]), requires_python=item.get("requires-python"),
            core_metadata_sha256=meta.get("sha256") if isinstance(meta, dict) else None,
            yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked)))
    return files, [str(v) for v in doc.get("versions") or ()]

