"""The upstream simple index over HTTP (aiohttp client). Every failure becomes an `UpstreamError`, counted
and timed per kind (page, file, metadata)."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from ..errors import UpstreamError
from ..metrics import UPSTREAM_ERRORS, UPSTREAM_LATENCY
from ..ports import PageFetch, UpstreamBody
from ..upstream import UPSTREAM_ACCEPT

MAX_PAGE_SIZE = 64 * 1024 * 1024
CHUNK = 256 * 1024
_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)


def client_session(timeout: float) -> aiohttp.ClientSession:
    """One session per process. `timeout` bounds connecting and each wait for bytes, not a whole download.
    Proxy variables (HTTPS_PROXY, NO_PROXY) are honoured: pypi.org is often behind one."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout),
        trust_env=True, headers={"User-Agent": "registry-proxy"},
    )


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or its first `limit + 1` bytes when it is longer than `limit`.

    Not `resp.content.read(n)`: that returns what has arrived so far (one network read), not n bytes,
    so a page that comes in several packets would be cut short."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


class HttpUpstream:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/") + "/"

    async def fetch_page(self, name: str, etag: str | None) -> PageFetch:
        url = f"{self.base_url}{name}/"
        headers = {"Accept": UPSTREAM_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        started = time.perf_counter()
        try:
            async with self.session.get(url, headers=headers) as resp:
                final = str(resp.url)
                if resp.status == 304:
                    return PageFetch("not_modified", final, etag=resp.headers.get("ETag") or etag)
                if resp.status in (404, 410):
                    return PageFetch("not_found", final)
                if resp.status != 200:
                    raise self._failed("page", f"status_{resp.status}")
                if (resp.content_length or 0) > MAX_PAGE_SIZE:
                    raise self._failed("page", "too_large")
                body = await _read_at_most(resp, MAX_PAGE_SIZE)
                if len(body) > MAX_PAGE_SIZE:
                    raise self._failed("page", "too_large")
                return PageFetch("ok", final, body, resp.headers.get("Content-Type", ""), resp.headers.get("ETag"))
        except _FAILURES as exc:
            raise self._failed("page", type(exc).__name__) from exc
        finally:
            UPSTREAM_LATENCY.labels("page").observe(time.perf_counter() - started)

    @asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[UpstreamBody]:
        started = time.perf_counter()
        try:
            # identity: the bytes hashed and stored must be the file's, not a compressed transfer of it.
            async with self.session.get(url, headers={"Accept-Encoding": "identity"}, auto_decompress=False) as resp:
                UPSTREAM_LATENCY.labels("file").observe(time.perf_counter() - started)
                if resp.status != 200:
                    raise self._failed("file", f"status_{resp.status}")
                yield UpstreamBody(resp.content_length, self._chunks(resp))
        except _FAILURES as exc:
            raise self._failed("file", type(exc).__name__) from exc

    async def _chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        async for chunk in resp.content.iter_chunked(CHUNK):
            yield chunk

    async def fetch_bytes(self, url: str, limit: int) -> bytes | None:
        started = time.perf_counter()
        try:
            async with self.session.get(url) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise self._failed("metadata", f"status_{resp.status}")
                data = await _read_at_most(resp, limit)
                if len(data) > limit:
                    raise self._failed("metadata", "too_large")
                return data
        except _FAILURES as exc:
            raise self._failed("metadata", type(exc).__name__) from exc
        finally:
            UPSTREAM_LATENCY.labels("metadata").observe(time.perf_counter() - started)

    async def file_size(self, url: str) -> int | None:
        started = time.perf_counter()
        try:
            # identity, as for downloads: the length wanted is the file's, not a compressed transfer's.
            async with self.session.head(url, headers={"Accept-Encoding": "identity"}, allow_redirects=True) as resp:
                if resp.status != 200:
                    UPSTREAM_ERRORS.labels("size", f"status_{resp.status}").inc()
                    return None
                if resp.content_length is None:
                    UPSTREAM_ERRORS.labels("size", "no_length").inc()
                return resp.content_length
        except _FAILURES as exc:
            raise self._failed("size", type(exc).__name__) from exc
        finally:
            UPSTREAM_LATENCY.labels("size").observe(time.perf_counter() - started)

    @staticmethod
    def _failed(kind: str, reason: str) -> UpstreamError:
        UPSTREAM_ERRORS.labels(kind, reason).inc()
        return UpstreamError(reason)
