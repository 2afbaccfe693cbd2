"""`StreamingInspector`: the upload's bytes pushed chunk by chunk, inspected in the same pass.

The readers (`scan_zip`, `scan_sdist_tar`) pull from a blocking stream; here they run in one helper
thread per upload (started by the first chunk), fed through a bounded pipe. `feed` blocks while the pipe
holds PIPE_LIMIT bytes (backpressure), so memory stays flat: the pipe, one chunk, the reader's working set
(64 KiB pieces, a zlib window), the metadata file, and for zips a table of members (name, CRC, sizes,
sha256) until the central directory has been compared with it, bounded by MAX_MEMBERS.

A file small enough to be held whole is read by `inspect` in the caller's thread instead, without the
helper thread and its hand-overs (upload-api's small files).
"""
from __future__ import annotations

import collections
import io
import sys
import threading

from ..adapters.readers import ForwardReader
from . import rules
from .rules import ArchiveFormat, Expected, Inspection, InvalidDistribution, archive_format
from .tar import scan_sdist_tar
from .zipstream import scan_zip

# What the producer may have handed over and the reader not yet taken.
PIPE_LIMIT = 1024 * 1024
# How long `abort` waits for the reader to notice; it only ever finishes the piece it holds.
ABORT_WAIT = 5.0


class _Aborted(BaseException):
    """Raised inside the reader when the upload is abandoned; a BaseException, so no parser's
    `except Exception` (nor `content_errors`) turns it into a verdict."""


class _Pipe:
    """Chunks from the producer thread to the reader thread, at most PIPE_LIMIT bytes (plus one chunk)
    held. `read(n)` blocks until `n` bytes or the end, like a file."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: collections.deque[memoryview] = collections.deque()
        self._held = 0
        self._closed = False  # the producer has no more
        self._stopped = False  # the reader is gone (a verdict) or the upload abandoned
        self._aborted = False

    def put(self, chunk: bytes) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._held < self._limit or self._stopped)
            if self._stopped:
                return  # nobody will read it: the verdict is already known
            self._chunks.append(memoryview(chunk))
            self._held += len(chunk)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self, *, aborted: bool = False) -> None:
        with self._cond:
            self._stopped = True
            self._aborted = self._aborted or aborted
            self._chunks.clear()
            self._held = 0
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size >= 0 else sys.maxsize
        got = 0
        with self._cond:
            while got < wanted:
                self._cond.wait_for(lambda: bool(self._chunks) or self._closed or self._aborted)
                if self._aborted:
                    raise _Aborted
                if not self._chunks:
                    break  # closed: the end of the upload
                head = self._chunks.popleft()
                take = min(len(head), wanted - got)
                if take < len(head):
                    self._chunks.appendleft(head[take:])  # a view: the rest is not copied
                parts.append(bytes(head[:take]))
                got += take
                self._held -= take
                self._cond.notify_all()
        return parts[0] if len(parts) == 1 else b"".join(parts)


class StreamingInspector:
    """Inspects a distribution from the chunks of its upload, in order, without holding it.

    `feed(chunk)` from one producer thread (it may block: backpressure), then `finish()` for the verdict,
    or `abort()` if the upload failed for another reason. `feed` and `finish` raise InvalidDistribution
    as soon as the bytes seen so far are known bad (the reader runs a little behind: a fault is reported
    by the next call); after that, the producer should stop. Usable as a context manager that aborts
    unless `finish` was reached. The constructor raises InvalidDistribution for a filename that is not a
    distribution's.
    """

    def __init__(self, filename: str, expected: Expected, *, max_metadata: int = rules.MAX_METADATA_SIZE) -> None:
        self.filename = filename
        self.format = archive_format(filename)
        self.expected = expected
        self.max_metadata = max_metadata
        self.bytes_fed = 0
        self._pipe = _Pipe(PIPE_LIMIT)
        self._result: Inspection | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"inspect {filename}"[:60], daemon=True)

    def inspect(self, data: bytes) -> Inspection:
        """The verdict on a whole upload held in memory, read in the calling thread; instead of feed/finish."""
        if self._thread.is_alive() or self._done.is_set():
            raise RuntimeError("inspect() after feed() or finish()")
        self.bytes_fed = len(data)
        try:
            self._result = self._scan(io.BytesIO(data))
            return self._result
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._done.set()

    def feed(self, chunk: bytes) -> None:
        """Hand over the next chunk of the upload; raises InvalidDistribution once the bytes are known bad."""
        self._raise_if_failed()
        self._start()
        if chunk:
            self.bytes_fed += len(chunk)
            self._pipe.put(bytes(chunk))
            self._raise_if_failed()

    def finish(self) -> Inspection:
        """The verdict on the whole upload: its inspection, or InvalidDistribution."""
        self._start()
        self._pipe.close()
        self._done.wait()
        self._raise_if_failed()
        assert self._result is not None
        return self._result

    def abort(self) -> None:
        """Stop the reader and drop what it holds; never raises."""
        try:
            self._pipe.stop(aborted=True)
            if self._thread.is_alive() and threading.current_thread() is not self._thread:
                self._thread.join(ABORT_WAIT)
        except BaseException:  # noqa: BLE001 - abort is called on error paths and must not add one
            pass

    def __enter__(self) -> StreamingInspector:
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self._done.is_set() or self._result is None:
            self.abort()

    def _start(self) -> None:
        if not self._thread.is_alive() and not self._done.is_set():
            self._thread.start()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            self._result = self._scan(self._pipe)
        except _Aborted:
            self._error = InvalidDistribution("the upload was abandoned")
        except BaseException as exc:  # noqa: BLE001 - handed to the producer, which re-raises it
            self._error = exc
        finally:
            self._pipe.stop()
            self._done.set()

    def _scan(self, stream: ForwardReader) -> Inspection:
        if self.format is ArchiveFormat.SDIST_TAR:
            result = scan_sdist_tar(stream, self.expected, max_metadata=self.max_metadata)
        else:
            result = scan_zip(stream, self.format, self.expected, max_metadata=self.max_metadata)
        # A tar.gz may be followed by padding that its reader left unread (today's policy): drain it.
        while stream.read(rules.STREAM_CHUNK):
            pass
        return result
