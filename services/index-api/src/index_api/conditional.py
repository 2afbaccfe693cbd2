"""HTTP conditional and range requests (RFC 9110 §13, §14), as pure functions."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import RangeNotSatisfiable

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to serve, or None to serve the whole file.

    Only a single `bytes=a-b`, `bytes=a-` or `bytes=-n` is honoured. Anything else (other units, several
    ranges, bad syntax) is ignored and the whole file is sent, which RFC 9110 allows. A range that starts
    past the end, or an empty suffix, raises RangeNotSatisfiable (416).
    """
    if not header:
        return None
    match = _RANGE_RE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, min(end, size - 1))


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` uses the weak comparison: `W/` prefixes are ignored; `*` matches anything."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


def range_applies(if_range: str | None, etag: str) -> bool:
    """`If-Range` with a different (or weak) validator means: ignore Range, send the whole file."""
    if if_range is None:
        return True
    return if_range.strip() == etag and not etag.startswith("W/")


def requested_range(range_header: str | None, if_range: str | None, size: int, etag: str) -> ByteRange | None:
    if not range_applies(if_range, etag):
        return None
    return parse_range(range_header, size)
