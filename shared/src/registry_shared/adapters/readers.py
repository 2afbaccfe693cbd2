"""Blocking file-likes over stored objects, for code that runs in a worker thread (zipfile, tarfile, minio).

`RangedReader` is seekable and fetches byte ranges on demand (zipfile needs only the central
directory and one member, so a wheel is never downloaded whole). `PullReader` is a forward-only
blocking `read()` over chunks a subclass pulls; `StreamReader` pulls them from an async iterator
(`ObjectStore.stream`) on the event loop. A storage failure surfaces as `ObjectReadError`, which is
deliberately not an `OSError`: zipfile turns OSErrors into "not a zip file", and an outage must never
look like a bad archive. (The metadata worker inspects archives with them; the proxy reads the core
metadata of the wheels it caches.)
"""
from __future__ import annotations

import asyncio
import errno
import io
from collections.abc import AsyncIterator, Callable
from typing import Protocol

Fetch = Callable[[int, int], bytes]


class ForwardReader(Protocol):
    """A blocking, forward-only `read` that returns b"" only at the end (a stream of a stored object, an
    upload's chunks)."""

    def read(self, size: int = -1, /) -> bytes: ...


class SeekableReader(Protocol):
    """What zipfile reads an archive through: a file opened "rb", or a `RangedReader` (which typeshed's
    `IO[bytes]` does not describe: it is a RawIOBase)."""

    def read(self, size: int = -1, /) -> bytes: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def tell(self) -> int: ...

READAHEAD = 64 * 1024


class ObjectReadError(Exception):
    """Reading the stored object failed: transient, not a content problem."""


class RangedReader(io.RawIOBase):
    """A read-only, seekable view of `size` bytes fetched through `fetch(offset, length)`.

    Keeps one window of at least `readahead` bytes, so zipfile's many small reads cost one request.
    A window near the end is aligned to the end, so the end-of-central-directory record and a small
    central directory come in a single request.
    """

    def __init__(self, fetch: Fetch, size: int, readahead: int = READAHEAD) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self._readahead = readahead
        self._pos = 0
        self._window_start = 0
        self._window = b""
        self.requests = 0
        self.bytes_fetched = 0
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        target = base + offset
        if target < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = target
        return target

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        end = min(self._pos + size, self._size)
        if end <= self._pos:
            return b""
        window_end = self._window_start + len(self._window)
        if not (self._window_start <= self._pos and end <= window_end):
            self._load(self._pos, end)
        offset = self._pos - self._window_start
        data = self._window[offset: offset + (end - self._pos)]
        self._pos = end
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _load(self, start: int, end: int) -> None:
        length = max(end - start, self._readahead)
        if start + length > self._size:
            start = max(0, min(start, self._size - length))
            length = self._size - start
        try:
            data = self._fetch(start, length)
        except Exception as exc:
            self.error = exc
            raise ObjectReadError(f"ranged read failed: {type(exc).__name__}") from exc
        self.requests += 1
        self.bytes_fetched += len(data)
        if len(data) != length:
            self.error = ObjectReadError("short read")
            raise self.error
        self._window_start, self._window = start, data


class PullReader(io.RawIOBase):
    """A forward-only blocking `read()` over chunks that `_pull()` appends to `_buffer` (setting `_eof`
    at the end); subclasses say where chunks come from."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while not self._eof and (size is None or size < 0 or len(self._buffer) < size):
            self._pull()
        if size is None or size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
            return out
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _pull(self) -> None:
        raise NotImplementedError


class StreamReader(PullReader):
    """Chunks of an async iterator, each awaited on the event loop `loop`, used from a worker thread.

    The iterator itself is closed by its owner on the loop once the thread is done (so the S3
    connection is released even when reading stops early).
    """

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._chunks = chunks
        self._loop = loop
        self.bytes_read = 0
        self.error: BaseException | None = None

    def _pull(self) -> None:
        try:
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
        except Exception as exc:
            self.error = exc
            raise ObjectReadError(f"streamed read failed: {type(exc).__name__}") from exc
        if not chunk:
            self._eof = True
            return
        self.bytes_read += len(chunk)
        self._buffer += chunk

    async def _next(self) -> bytes:
        return await anext(self._chunks, b"")
