"""The first download of a proxied file: upstream bytes go to the waiting clients and into S3 at once, hashed
on the way; nothing is kept and no client gets the whole file unless the sha256 is the advertised one.

One `FileFetch` runs per file and replica, as a task of its own, so a client that goes away does not stop
the download that other clients (and the cache) are waiting for. Clients that arrive before the first byte
share the stream; later ones wait for the fetch to finish and read the stored copy.

Every queue is bounded: upstream is read as fast as S3 and the slowest attached client take the bytes, so
memory stays at a few chunks plus one S3 part whatever the file's size.
"""
from __future__ import annotations

import asyncio
import hashlib
import queue
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any, cast
from urllib.parse import urlsplit

from registry_shared.adapters.readers import PullReader
from registry_shared.logging import get_logger

from .errors import IntegrityError
from .files import ProxiedFile
from .metrics import UPSTREAM_ERRORS
from .ports import Upstream

log = get_logger()
CLIENT_QUEUE = 16  # chunks buffered for one client
STORE_QUEUE = 64  # chunks buffered ahead of the S3 upload thread
_VERIFIED = object()  # the last chunk may be released: the bytes are the advertised ones
_EOF = object()

StoreBlocking = Callable[[str, IO[bytes], int], None]


class Subscriber:
    """One client's view of the fetch. It holds back the newest chunk until the next one (or the verdict)
    arrives, so a client never receives a complete file whose hash does not match."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(CLIENT_QUEUE)
        self.attached = True

    async def chunks(self) -> AsyncIterator[bytes]:
        pending: bytes | None = None
        try:
            while True:
                item = await self.queue.get()
                if item is _VERIFIED:
                    if pending:
                        yield pending
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                if pending:
                    yield pending
                pending = item
        finally:
            self.detach()

    def detach(self) -> None:
        self.attached = False
        while not self.queue.empty():  # unblocks a pending put of the fetch
            self.queue.get_nowait()


class _StorePipe(PullReader):
    """A blocking `read()` for the S3 upload (in a worker thread), fed from the event loop.

    Chunks cross in a thread-safe queue; a semaphore on the loop side bounds how many wait there. The last
    item (`_EOF` or the failure) is put without waiting, so it reaches the thread even from a cancelled
    task: the upload thread is never left blocked on a loop that has stopped feeding it.
    If the upload thread stops early (S3 failed), feeding becomes a no-op: clients still get their bytes,
    the file just is not cached.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._items: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(STORE_QUEUE)
        self.closed_by_consumer = False

    # -- event loop side ------------------------------------------------------------------------
    async def feed(self, chunk: bytes) -> None:
        if not self.closed_by_consumer:
            await self._room.acquire()
            self._items.put(chunk)

    def finish(self, last: object) -> None:
        """`_EOF`, or the exception that makes the upload store nothing."""
        self._items.put(last)

    def consumer_done(self, _task: object) -> None:
        self.closed_by_consumer = True
        for _ in range(STORE_QUEUE):  # wakes a feed() waiting for room
            self._room.release()

    # -- upload thread side ---------------------------------------------------------------------
    def _pull(self) -> None:
        item = self._items.get()
        if item is _EOF:
            self._eof = True
        elif isinstance(item, BaseException):
            raise item  # the upload is abandoned: no object, no multipart part is left behind
        else:
            self._buffer += cast(bytes, item)  # feed() puts only chunks besides the two sentinels
            try:
                self._loop.call_soon_threadsafe(self._room.release)
            except RuntimeError:  # the loop is closed: nobody feeds any more
                pass


class FileFetch:
    def __init__(self, file: ProxiedFile, upstream: Upstream, store_blocking: StoreBlocking, part_size: int,
                 on_stored: Callable[[ProxiedFile, int], Awaitable[None]]) -> None:
        self.file = file
        self.upstream = upstream
        self.store_blocking = store_blocking
        self.part_size = part_size
        self.on_stored = on_stored
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[int | None] = loop.create_future()  # Content-Length once upstream answers
        self.done: asyncio.Future[ProxiedFile] = loop.create_future()  # the file as stored, or the failure
        self._subscribers: list[Subscriber] = []
        self._streaming = False
        for future in (self.started, self.done):
            future.add_done_callback(_consume_exception)

    def subscribe(self) -> Subscriber | None:
        """The byte stream for one more client, or None once bytes have flowed (then wait for `done`).
        The caller must `detach()` it when done, even if it never read from it."""
        if self._streaming or self.done.done():
            return None
        subscriber = Subscriber()
        self._subscribers.append(subscriber)
        return subscriber

    async def run(self) -> None:
        file, pipe, upload = self.file, None, None
        try:
            async with self.upstream.open_file(file.file.url) as body:
                if file.file.size is not None and body.length is not None and body.length != file.file.size:
                    raise IntegrityError("size_mismatch")
                self.started.set_result(body.length if body.length is not None else file.file.size)
                pipe = _StorePipe(asyncio.get_running_loop())
                upload = asyncio.ensure_future(
                    asyncio.to_thread(self.store_blocking, file.object_key, pipe, self.part_size))  # type: ignore[arg-type]
                upload.add_done_callback(pipe.consumer_done)
                digest, size = hashlib.sha256(), 0
                async for chunk in body.chunks:
                    self._streaming = True
                    digest.update(chunk)
                    size += len(chunk)
                    await pipe.feed(chunk)
                    await self._offer(chunk)
            if digest.hexdigest() != file.file.sha256:
                raise IntegrityError("sha256_mismatch")
            if file.file.size is not None and size != file.file.size:
                raise IntegrityError("size_mismatch")
            pipe.finish(_EOF)
            await self._offer(_VERIFIED)
            stored = await self._stored(upload, size)
            self.done.set_result(stored)
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else IntegrityError("cancelled")
            if isinstance(exc, IntegrityError):
                UPSTREAM_ERRORS.labels("file", exc.reason).inc()
                # The host only: an upstream URL may carry credentials (a private mirror's user:token@).
                log.warning("upstream_file_rejected", file=file.key, reason=exc.reason,
                            upstream=urlsplit(file.file.url).hostname)
            if pipe is not None:
                pipe.finish(failure)
            if upload is not None:
                await asyncio.gather(upload, return_exceptions=True)
            if not self.started.done():
                self.started.set_exception(failure)
            await self._offer(failure)
            if not self.done.done():
                self.done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise

    async def _stored(self, upload: asyncio.Future[None] | None, size: int) -> ProxiedFile:
        """Wait for the S3 upload; a failed upload only means the next download fetches again."""
        assert upload is not None
        try:
            await upload
        except Exception as exc:  # noqa: BLE001 - the client got verified bytes; only the cache is lost
            log.warning("proxy_file_not_cached", file=self.file.key, error=type(exc).__name__)
            return self.file
        await self.on_stored(self.file, size)
        return self.file.stored(size)

    async def _offer(self, item: object) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.attached:
                await subscriber.queue.put(item)


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # Nobody may be waiting on a failed fetch; its failure is logged in run(), not as "never retrieved".
    if not future.cancelled():
        future.exception()
