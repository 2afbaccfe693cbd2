"""Integrity beyond pypi.org (issue 13): every zip member decompressed and its CRC-32 checked, wheel
members against RECORD, the central directory against the local headers, zip64, and the policies on
data descriptors, prepended and trailing bytes."""
from __future__ import annotations

import io
import struct
import zipfile

import pytest

from registry_shared.inspection import rules
from tests.unit.inspection.feeding import SDIST_TAR, SDIST_ZIP, WHEEL, WHOLE, accepted, reason, verdict
from tests.unit.worker.worker_archives import (
    flip_bit,
    record_hash,
    sdist_entries,
    sdist_tar,
    sdist_zip,
    wheel,
    wheel_entries,
    zip64_of,
    zip_of,
)

INFO = "demo_pkg-1.0.dist-info"
BLOB = bytes(range(256)) * 64  # compressible but not a bomb: deflated to a few hundred bytes


def _data_offset(data: bytes, name: str) -> int:
    """Where the data of member `name` starts (after its local header)."""
    at = data.index(name.encode()) - 30  # local headers come before the central directory
    assert data[at: at + 4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
    return at + 30 + name_len + extra_len


# -- damaged bytes ---------------------------------------------------------------------------------

def test_a_flipped_bit_in_a_members_compressed_data_is_refused() -> None:
    data = wheel(extra=[("demo_pkg/blob.bin", BLOB)])
    start = _data_offset(data, "demo_pkg/blob.bin")
    for position in range(start + 2, start + 40, 5):
        got = reason(WHEEL, flip_bit(data, position, bit=3))
        assert got.startswith("member 'demo_pkg/blob.bin' "), got


def test_a_flipped_bit_in_the_metadata_member_keeps_todays_reason() -> None:
    data = wheel()
    start = _data_offset(data, f"{INFO}/METADATA")
    assert reason(WHEEL, flip_bit(data, start + 10)) == "corrupt zip archive"


@pytest.mark.parametrize("chunk", [4096, WHOLE])  # streamed, and held whole as upload-api holds a small file
@pytest.mark.parametrize("filename,build", [(WHEEL, wheel), (SDIST_ZIP, sdist_zip), (SDIST_TAR, sdist_tar)])
def test_one_flipped_bit_anywhere_is_refused_or_harmless(filename: str, build, chunk: int) -> None:
    """Every byte of a small archive, one bit flipped: the verdict is InvalidDistribution, or the archive
    is accepted and what zipfile (pip) extracts from it is exactly the original."""
    original = build()
    harmless = 0
    for position in range(len(original)):
        mutant = flip_bit(original, position, bit=position % 8)
        result = verdict(filename, mutant, chunk=chunk)
        if isinstance(result, str):
            continue
        harmless += 1
        if filename != SDIST_TAR:
            assert _extracted(mutant) == _extracted(original), position
    # What may change unnoticed: dates, times, "version made by", attributes, the comment length is not.
    assert harmless < len(original) // 4


def _extracted(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


# -- RECORD ------------------------------------------------------------------------------------------

def _with_record(entries: list[tuple[str, bytes]], record: str | bytes) -> bytes:
    return zip_of([*entries, (f"{INFO}/RECORD", record.encode() if isinstance(record, str) else record)])


def _body() -> list[tuple[str, bytes]]:
    return [e for e in wheel_entries() if not e[0].endswith("/RECORD")]


def _record_lines(entries: list[tuple[str, bytes]]) -> list[str]:
    return [f"{n},{record_hash(d)},{len(d)}" for n, d in entries]


RECORD_CASES = {
    "a member differs from its hash": (
        lambda body: [*_record_lines(body)[:-1], f"{body[-1][0]},{record_hash(b'other')},{len(body[-1][1])}"],
        f"member '{INFO}/WHEEL' does not match its RECORD hash"),
    "a member differs from its size": (
        lambda body: [*_record_lines(body)[:-1], f"{body[-1][0]},{record_hash(body[-1][1])},1"],
        f"member '{INFO}/WHEEL' does not match its RECORD size"),
    "a member is missing": (lambda body: _record_lines(body)[1:],
                            "member 'demo_pkg/__init__.py' is missing from RECORD"),
    "an entry has no member": (lambda body: [*_record_lines(body), f"demo_pkg/gone.py,{record_hash(b'')},0"],
                               "RECORD lists 'demo_pkg/gone.py', which is not in the archive"),
    "an entry twice": (lambda body: [*_record_lines(body), _record_lines(body)[0]],
                       "RECORD lists 'demo_pkg/__init__.py' twice"),
    "md5": (lambda body: ["demo_pkg/__init__.py,md5=abc,10", *_record_lines(body)[1:]],
            "RECORD gives 'demo_pkg/__init__.py' a hash other than sha256 ('md5')"),
}


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_record_is_checked(case: str) -> None:
    lines, why = RECORD_CASES[case]
    body = _body()
    assert reason(WHEEL, _with_record(body, "\n".join([*lines(body), f"{INFO}/RECORD,,"]))) == why


def test_a_member_changed_after_record_was_written_is_refused() -> None:
    entries = wheel_entries()
    tampered = [(n, b"VALUE = 2\n" if n == "demo_pkg/__init__.py" else d) for n, d in entries]
    assert reason(WHEEL, zip_of(tampered)) == "member 'demo_pkg/__init__.py' does not match its RECORD hash"


def test_record_may_come_first_and_signatures_and_unhashed_entries_are_allowed() -> None:
    body = [*_body(), (f"{INFO}/RECORD.jws", b"{}")]
    record = "\n".join([*_record_lines(body[:-1]), f"{INFO}/RECORD,,", "demo_pkg/,,"]).replace(
        f",{record_hash(body[0][1])},10", ",,")
    data = zip_of([(f"{INFO}/RECORD", record.encode()), ("demo_pkg/", b""), *body])
    assert accepted(WHEEL, data).members == 6


def test_unreadable_record_is_refused() -> None:
    assert reason(WHEEL, _with_record(_body(), b"\xff,,")) == ".dist-info/RECORD is unreadable (not UTF-8 CSV)"


# -- the central directory against the local headers -----------------------------------------------

def _patch_central(data: bytes, old: bytes, new: bytes) -> bytes:
    start = data.find(b"PK\x01\x02")
    return data[:start] + data[start:].replace(old, new, 1)


def test_a_central_directory_naming_another_file_is_refused() -> None:
    data = _patch_central(wheel(extra=[("demo_pkg/a.py", b"")]), b"demo_pkg/a.py", b"demo_pkg/b.py")
    assert reason(WHEEL, data) == "the central directory disagrees with the local headers"


def test_a_central_directory_with_another_crc_is_refused() -> None:
    data = wheel(extra=[("demo_pkg/blob.bin", BLOB)])
    start = data.find(b"PK\x01\x02")
    assert reason(WHEEL, flip_bit(data, start + 16)) == "the central directory disagrees with the local headers"


def test_a_central_directory_in_another_order_is_accepted() -> None:
    data = wheel()
    start, end = data.find(b"PK\x01\x02"), data.rfind(b"PK\x05\x06")
    entries, at = [], start
    while at < end:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        size = 46 + name_len + extra_len + comment_len
        entries.append(data[at: at + size])
        at += size
    reordered = data[:start] + b"".join(entries[::-1]) + data[end:]
    assert _extracted(reordered) == _extracted(data)
    assert accepted(WHEEL, reordered).members == 4


def test_an_absurdly_large_central_directory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_CENTRAL_DIRECTORY", 100)
    assert reason(WHEEL, wheel()) == "the central directory is too large"


def test_too_many_members_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_MEMBERS", 3)
    assert reason(WHEEL, wheel()) == "too many members"


# -- zip64, descriptors, junk ------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 7, None])
def test_zip64_archives_are_read(chunk: int | None) -> None:
    data = zip64_of(wheel_entries(extra=[("demo_pkg/blob.bin", BLOB)]))
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    assert accepted(WHEEL, data, chunk).members == 5
    assert accepted(SDIST_ZIP, zip64_of(sdist_entries()), chunk).metadata_path == "demo_pkg-1.0/PKG-INFO"


def test_a_zip64_archive_with_a_damaged_member_is_refused() -> None:
    data = zip64_of(wheel_entries(extra=[("demo_pkg/blob.bin", BLOB)]))
    start = _data_offset(data, "demo_pkg/blob.bin")
    assert reason(WHEEL, flip_bit(data, start + 20)).startswith("member 'demo_pkg/blob.bin' ")


class _Unseekable(io.RawIOBase):
    """zipfile writes a data descriptor after every member when it cannot seek back."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return self.buf.write(data)


def _streamed_zip(entries: list[tuple[str, bytes]], compression: int) -> bytes:
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return sink.buf.getvalue()


def test_deflated_members_with_data_descriptors_are_read() -> None:
    data = _streamed_zip(wheel_entries(extra=[("demo_pkg/blob.bin", BLOB)]), zipfile.ZIP_DEFLATED)
    assert b"PK\x07\x08" in data
    assert accepted(WHEEL, data, 7).members == 5


def test_stored_members_with_data_descriptors_are_refused() -> None:
    data = _streamed_zip(wheel_entries(), zipfile.ZIP_STORED)
    assert reason(WHEEL, data) == ("member 'demo_pkg/__init__.py' is stored with a data descriptor (its size is "
                                   "unknown until its end), which is not supported")


def test_other_compression_methods_are_refused() -> None:
    bz2 = zip_of(wheel_entries(), compression=zipfile.ZIP_BZIP2)
    assert reason(WHEEL, bz2) == "member 'demo_pkg/__init__.py' uses an unsupported compression method"
    entries = wheel_entries()
    metadata_first = zip_of([entries[1]], compression=zipfile.ZIP_LZMA)[:-22]  # local entry only
    assert reason(WHEEL, metadata_first) == ".dist-info/METADATA uses an unsupported compression method"


def test_an_encrypted_member_is_refused() -> None:
    data = bytearray(wheel())
    data[6] |= 1  # the first local header's flags
    assert reason(WHEEL, bytes(data)) == "member 'demo_pkg/__init__.py' is encrypted"


def test_prepended_bytes_are_refused() -> None:
    assert reason(WHEEL, b"#!/bin/sh\n" + wheel()) == "a wheel (.whl) must be a zip archive"


def test_trailing_bytes_are_refused() -> None:
    assert reason(WHEEL, wheel() + b"\0") == "data after the end of the zip archive"


def test_a_comment_is_allowed_but_not_one_holding_an_end_record() -> None:
    def commented(comment: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in wheel_entries():
                zf.writestr(name, data)
            zf.comment = comment
        return buf.getvalue()

    assert accepted(WHEEL, commented(b"built by a test")).members == 4
    assert reason(WHEEL, commented(b"PK\x05\x06" + bytes(18))) == "corrupt zip archive"


def test_an_empty_zip_is_refused_as_today() -> None:
    assert reason(WHEEL, zip_of([])) == "missing .dist-info directory"
    assert reason(SDIST_ZIP, zip_of([])) == "missing PKG-INFO"
