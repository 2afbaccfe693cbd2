"""Feeding bytes to a StreamingInspector as upload-api does: in chunks, then finish; or, for a small file,
the whole file to `inspect` at once (chunk WHOLE)."""
from __future__ import annotations

from registry_shared.domain.text import printable
from registry_shared.inspection import Expected, Inspection, InvalidDistribution, StreamingInspector

DEMO = Expected("demo-pkg", "1", "demo_pkg", "1.0")
WHEEL = "demo_pkg-1.0-py3-none-any.whl"
SDIST_TAR = "demo_pkg-1.0.tar.gz"
SDIST_ZIP = "demo_pkg-1.0.zip"
WHOLE = -1  # the file held whole, inspected in the caller's thread (upload-api's small files)
# One byte, an odd size that splits every header, aiohttp's chunk, the whole file fed at once, and held whole.
CHUNK_SIZES = [1, 7, 64 * 1024, None, WHOLE]


def verdict(filename: str, data: bytes, chunk: int | None = None, expected: Expected = DEMO) -> Inspection | str:
    """The inspection, or the rejection's reason (checked to be printable and in the usual message)."""
    size = chunk or max(len(data), 1)
    with StreamingInspector(filename, expected) as inspector:
        try:
            if chunk == WHOLE:
                return inspector.inspect(data)
            for start in range(0, len(data), size):
                inspector.feed(data[start: start + size])
            return inspector.finish()
        except InvalidDistribution as exc:
            assert exc.message == f"Invalid distribution file: {exc.reason}"
            assert printable(exc.reason) == exc.reason
            return exc.reason


def reason(filename: str, data: bytes, chunk: int | None = None) -> str:
    result = verdict(filename, data, chunk)
    assert isinstance(result, str), f"accepted: {result}"
    return result


def accepted(filename: str, data: bytes, chunk: int | None = None) -> Inspection:
    result = verdict(filename, data, chunk)
    assert isinstance(result, Inspection), f"refused: {result}"
    return result
