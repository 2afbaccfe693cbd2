"""What the proxy's use cases need from storage and from the upstream index, as protocols; `adapters/`
implements them, tests pass fakes."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import IO, Protocol

from .files import ProxiedFile
from .pages import Learned, ProxiedPage
from .upstream import UpstreamFile


@dataclass(frozen=True)
class PageFetch:
    """An upstream page request's outcome: `ok` (body), `not_modified` (ETag matched) or `not_found`."""

    status: str
    url: str
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None


@dataclass
class UpstreamBody:
    """An open upstream file download."""

    length: int | None  # Content-Length, when upstream sent one
    chunks: AsyncIterator[bytes]


class Upstream(Protocol):
    async def fetch_page(self, name: str, etag: str | None) -> PageFetch:
        """Raises UpstreamError when the upstream cannot answer (network, timeout, 5xx)."""

    def open_file(self, url: str) -> AbstractAsyncContextManager[UpstreamBody]:
        """Raises UpstreamError before or while the body flows."""

    async def fetch_bytes(self, url: str, limit: int) -> bytes | None:
        """A small document (core metadata); None on 404."""

    async def file_size(self, url: str) -> int | None:
        """A file's length from a HEAD request, or None when upstream does not say (no Content-Length, not
        200); raises UpstreamError when upstream cannot answer."""


class ProxyStore(Protocol):
    async def load_page(self, name: str) -> ProxiedPage | None: ...

    async def save_page(self, page: ProxiedPage) -> None: ...

    async def touch_page(self, name: str, fetched_at: float, etag: str | None) -> None: ...

    async def register_files(self, name: str, files: Sequence[UpstreamFile]) -> None: ...

    async def learned(self, name: str) -> dict[str, Learned]: ...

    async def find_file(self, sha256: str, filename: str) -> ProxiedFile | None: ...

    async def mark_stored(self, file: ProxiedFile, size: int) -> None: ...

    async def mark_metadata(self, file: ProxiedFile, sha256: str, extracted: bool) -> None: ...


class Blobs(Protocol):
    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """The object's bytes (length 0 = to the end), or None when it does not exist."""

    def put_stream_blocking(self, key: str, reader: IO[bytes], part_size: int) -> None:
        """Upload from a blocking reader (called in a worker thread); a reader error stores nothing."""

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def read(self, key: str) -> bytes | None: ...

    async def wheel_metadata(self, key: str, size: int) -> bytes | None:
        """A stored wheel's `*.dist-info/METADATA`, read with ranged requests; None if it has none."""
