"""Range, If-None-Match and If-Range rules (index_api.conditional)."""
from __future__ import annotations

import pytest

from index_api.conditional import ByteRange, etag_matches, parse_range, requested_range
from index_api.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("", None),
    ("bytes=0-99", ByteRange(0, 99)),
    ("bytes=0-0", ByteRange(0, 0)),
    ("bytes=990-", ByteRange(990, 999)),
    ("bytes=-10", ByteRange(990, 999)),
    ("bytes=-5000", ByteRange(0, 999)),  # a suffix longer than the file is the whole file
    ("bytes=500-5000", ByteRange(500, 999)),  # the end is clamped
    ("bytes=0-999", ByteRange(0, 999)),
    ("BYTES = 1 - 2", ByteRange(1, 2)),
    ("bytes=5-1", None),  # invalid: ignored, the whole file is sent
    ("bytes=0-1,5-6", None),  # several ranges: not honoured
    ("items=0-1", None),
    ("bytes=-", None),
    ("bytes=a-b", None),
    ("bytes=١-٢", None),  # non-ASCII digits are not digits here
])
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=1000-", SIZE), ("bytes=1000-2000", SIZE), ("bytes=-0", SIZE), ("bytes=0-", 0), ("bytes=-1", 0),
])
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as raised:
        parse_range(header, size)
    assert raised.value.status == 416
    assert raised.value.headers == {"Content-Range": f"bytes */{size}"}


def test_byte_range_headers() -> None:
    assert ByteRange(10, 19).length == 10
    assert ByteRange(10, 19).content_range(SIZE) == "bytes 10-19/1000"


@pytest.mark.parametrize(("header", "matches"), [
    (None, False), ('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True), ('"abcd"', False),
    ("abc", False),
])
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


@pytest.mark.parametrize(("if_range", "expected"), [
    (None, ByteRange(0, 9)), ('"abc"', ByteRange(0, 9)), ('"old"', None), ('W/"abc"', None),
])
def test_if_range(if_range: str | None, expected: ByteRange | None) -> None:
    assert requested_range("bytes=0-9", if_range, SIZE, '"abc"') == expected
