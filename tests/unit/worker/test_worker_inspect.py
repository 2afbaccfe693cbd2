"""Archive inspection rules (SPEC §4 "Contents are checked") on archives built in memory."""
from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import tracemalloc
import warnings
import zlib

import pytest

from metadata_worker.adapters.readers import ObjectReadError, RangedReader
from metadata_worker.inspect import (
    ArchiveFormat,
    Expected,
    InvalidDistribution,
    _content_errors,
    archive_format,
    inspect_sdist_tar,
    inspect_sdist_zip,
    inspect_wheel,
)
from tests.unit.worker.worker_archives import (
    core_metadata,
    corrupt_wheel,
    flip_zip_version,
    pax_member,
    sdist_entries,
    sdist_tar,
    sdist_zip,
    symlink,
    tar_gz_of,
    wheel,
    wheel_entries,
    without,
    zip_of,
)

DEMO = Expected("demo-pkg", "1", "demo_pkg", "1.0")


class CountingStream(io.RawIOBase):
    """A forward-only stream that records how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.bytes_read += len(chunk)
        return chunk


def reject_reason(check, data: bytes, expected: Expected = DEMO) -> str:
    stream = io.BytesIO(data)
    with pytest.raises(InvalidDistribution) as info:
        check(stream, expected)
    assert info.value.message == f"Invalid distribution file: {info.value.reason}"
    return info.value.reason


# -- accepted ----------------------------------------------------------------------------------

def test_valid_wheel_yields_its_metadata() -> None:
    result = inspect_wheel(io.BytesIO(wheel()), DEMO)
    assert result.metadata_path == "demo_pkg-1.0.dist-info/METADATA"
    assert result.metadata_bytes == core_metadata("demo-pkg", "1.0")
    assert result.metadata["name"] == "demo-pkg"
    assert result.metadata["requires_python"] == ">=3.8"
    assert result.metadata["requires_dist"] == ["requests>=2", "attrs; extra == 'x'"]
    assert result.metadata["description"] == "A demo package.\n"


def test_valid_sdist_tar_gz_and_zip_yield_pkg_info() -> None:
    tar_result = inspect_sdist_tar(io.BytesIO(sdist_tar()), DEMO)
    zip_result = inspect_sdist_zip(io.BytesIO(sdist_zip()), DEMO)
    for result in (tar_result, zip_result):
        assert result.metadata_path == "demo_pkg-1.0/PKG-INFO"
        assert result.metadata["version"] == "1.0"


def test_equivalent_spellings_of_name_and_version_are_accepted() -> None:
    metadata = core_metadata("Demo.PKG", "1.0.0")
    result = inspect_wheel(io.BytesIO(wheel(metadata=metadata)), DEMO)
    assert result.metadata["name"] == "Demo.PKG"


def test_tar_with_dot_slash_prefix_and_inner_relative_symlink_is_accepted() -> None:
    link = tarfile.TarInfo("./demo_pkg-1.0/docs/README")
    link.type, link.linkname = tarfile.SYMTYPE, "../pyproject.toml"
    entries = [(f"./{n}", d) for n, d in sdist_entries()]
    result = inspect_sdist_tar(io.BytesIO(tar_gz_of([link, *entries])), DEMO)
    assert result.metadata_path == "demo_pkg-1.0/PKG-INFO"


def test_tar_is_read_to_its_end() -> None:
    top = "demo_pkg-1.0"
    big = os.urandom(4 * 1024 * 1024)  # incompressible, so the compressed stream is large too
    data = tar_gz_of([(f"{top}/PKG-INFO", core_metadata()), (f"{top}/data.bin", big), (f"{top}/last.py", b"")])
    stream = CountingStream(data)
    inspect_sdist_tar(stream, DEMO)
    assert stream.bytes_read == len(data)


def _peak_memory_of_tar_with(members: int) -> int:
    data = tar_gz_of([*sdist_entries(), *((f"demo_pkg-1.0/m/{i:06d}.py", b"") for i in range(members))])
    tracemalloc.start()
    try:
        inspect_sdist_tar(io.BytesIO(data), DEMO)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_tar_memory_stays_flat_whatever_the_member_count() -> None:
    # tarfile would keep a TarInfo per member (about 12 MB for these 10,000) if it were let to.
    assert _peak_memory_of_tar_with(10_000) - _peak_memory_of_tar_with(100) < 1024 * 1024


def test_wheel_through_ranged_reader_reads_only_a_small_part() -> None:
    data = wheel(extra=[("demo_pkg/blob.bin", os.urandom(3 * 1024 * 1024))])
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset: offset + length]

    reader = RangedReader(fetch, len(data), readahead=64 * 1024)
    result = inspect_wheel(reader, DEMO)
    assert result.metadata["name"] == "demo-pkg"
    assert reader.bytes_fetched < 256 * 1024
    assert len(calls) <= 3


def test_storage_failure_is_not_a_content_problem() -> None:
    def fetch(offset: int, length: int) -> bytes:
        raise TimeoutError("S3 did not answer")  # an OSError subclass, which zipfile would swallow

    reader = RangedReader(fetch, 10_000)
    with pytest.raises(ObjectReadError):
        inspect_wheel(reader, DEMO)
    assert isinstance(reader.error, TimeoutError)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [("a-1.0-py3-none-any.whl", ArchiveFormat.WHEEL), ("a-1.0.tar.gz", ArchiveFormat.SDIST_TAR),
     ("A-1.0.ZIP", ArchiveFormat.SDIST_ZIP)],
)
def test_archive_format_follows_the_extension(filename: str, expected: ArchiveFormat) -> None:
    assert archive_format(filename) is expected


def test_archive_format_refuses_other_extensions() -> None:
    with pytest.raises(InvalidDistribution, match="unsupported file type"):
        archive_format("a-1.0.tar.bz2")


# -- rejected wheels ---------------------------------------------------------------------------

def _duplicate_member_wheel() -> bytes:
    with warnings.catch_warnings():  # zipfile warns when writing a duplicate name, which is the point
        warnings.simplefilter("ignore", UserWarning)
        return wheel(extra=[("demo_pkg/__init__.py", b"again")])


ZEROS_20MB = bytes(20 * 1024 * 1024)

WHEEL_CASES = {
    "not a zip": (b"this is not a zip file at all" * 10, "a wheel (.whl) must be a zip archive"),
    "a tar.gz named .whl": (sdist_tar(), "a wheel (.whl) must be a zip archive"),
    "no METADATA": (zip_of(without(wheel_entries(), "/METADATA")), "missing .dist-info/METADATA"),
    "no RECORD": (zip_of(without(wheel_entries(), "/RECORD")), "missing .dist-info/RECORD"),
    "no dist-info": (zip_of([("demo_pkg/__init__.py", b"")]), "missing .dist-info directory"),
    "two dist-infos": (wheel(extra=[("other-1.0.dist-info/METADATA", b"")]), "several .dist-info directories"),
    "foreign dist-info": (zip_of(wheel_entries(name="other")), "the .dist-info directory ('other-1.0.dist-info')"),
    "absolute path": (wheel(extra=[("/etc/cron.d/evil", b"x")]), "absolute member path '/etc/cron.d/evil'"),
    "drive path": (wheel(extra=[("C:/evil", b"x")]), "absolute member path 'C:/evil'"),
    "dot-dot path": (wheel(extra=[("demo_pkg/../../evil", b"x")]), "contains '..'"),
    "backslash dot-dot": (wheel(extra=[("demo_pkg\\..\\..\\evil", b"x")]), "contains '..'"),
    "duplicate member": (_duplicate_member_wheel(), "duplicate member 'demo_pkg/__init__.py'"),
    "zip bomb": (wheel(extra=[("demo_pkg/zeros.bin", ZEROS_20MB)]), "suspicious compression ratio (zip bomb)"),
    "huge METADATA": (wheel(metadata=core_metadata(description="x" * (6 * 1024 * 1024))),
                      ".dist-info/METADATA is too large"),
    "name mismatch": (wheel(metadata=core_metadata("other", "1.0")),
                      "the name in the core metadata ('other') does not match the file name (demo_pkg)"),
    "version mismatch": (wheel(metadata=core_metadata("demo-pkg", "2.0")),
                         "the version in the core metadata ('2.0') does not match the file name (1.0)"),
    "no Name": (wheel(metadata=b"Metadata-Version: 2.1\nVersion: 1.0\n"), "the core metadata has no Name"),
    "no Version": (wheel(metadata=b"Metadata-Version: 2.1\nName: demo-pkg\n"), "the core metadata has no Version"),
}


@pytest.mark.parametrize("case", list(WHEEL_CASES))
def test_wheel_rejections(case: str) -> None:
    data, reason = WHEEL_CASES[case]
    assert reason in reject_reason(inspect_wheel, data)


def test_wheel_with_corrupted_metadata_bytes_is_corrupt() -> None:
    assert reject_reason(inspect_wheel, corrupt_wheel()) == "corrupt zip archive"


def test_wheel_truncated_is_not_a_zip() -> None:
    data = wheel()
    assert "must be a zip archive" in reject_reason(inspect_wheel, data[: len(data) // 2])


# -- rejected sdists ---------------------------------------------------------------------------

TAR_CASES = {
    "a zip named .tar.gz": (sdist_zip(), "a .tar.gz sdist must be a gzip-compressed tar archive"),
    "gzip but not tar": (gzip.compress(b"plain text, no tar headers" * 40),
                         "a .tar.gz sdist must be a gzip-compressed tar archive"),
    "truncated": (sdist_tar()[:-60], "gzip stream"),
    "no PKG-INFO": (tar_gz_of(without(sdist_entries(), "PKG-INFO")), "missing PKG-INFO"),
    "PKG-INFO not at top": (tar_gz_of([("demo_pkg-1.0/sub/PKG-INFO", core_metadata())]), "missing PKG-INFO"),
    "two top-level dirs": (tar_gz_of([("a-1.0/setup.py", b""), *sdist_entries()]), "several top-level directories"),
    "file at the root": (tar_gz_of([("setup.py", b""), *sdist_entries()]),
                         "'setup.py' is outside the top-level directory"),
    "absolute path": (tar_gz_of([("/demo_pkg-1.0/x", b""), *sdist_entries()]), "absolute member path"),
    "dot-dot path": (tar_gz_of([("demo_pkg-1.0/../../x", b""), *sdist_entries()]), "contains '..'"),
    "escaping symlink": (tar_gz_of([symlink("demo_pkg-1.0/evil", "../../etc/passwd"), *sdist_entries()]),
                         "link 'demo_pkg-1.0/evil' points outside the top-level directory"),
    "absolute symlink": (tar_gz_of([symlink("demo_pkg-1.0/evil", "/etc/passwd"), *sdist_entries()]),
                         "points to an absolute path"),
    "gzip bomb": (tar_gz_of([("demo_pkg-1.0/zeros.bin", bytes(30 * 1024 * 1024)), *sdist_entries()]),
                  "suspicious compression ratio (gzip bomb)"),
    "version mismatch": (sdist_tar(metadata=core_metadata("demo-pkg", "1.1")), "the version in the core metadata"),
}


@pytest.mark.parametrize("case", list(TAR_CASES))
def test_sdist_tar_rejections(case: str) -> None:
    data, reason = TAR_CASES[case]
    assert reason in reject_reason(inspect_sdist_tar, data)


ZIP_SDIST_CASES = {
    "not a zip": (sdist_tar(), "a .zip sdist must be a zip archive"),
    "no PKG-INFO": (zip_of(without(sdist_entries(), "PKG-INFO")), "missing PKG-INFO"),
    "two top-level dirs": (zip_of([("other-1.0/x", b""), *sdist_entries()]), "several top-level directories"),
    "file at the root": (zip_of([("setup.py", b""), *sdist_entries()]), "outside the top-level directory"),
    "dot-dot path": (zip_of([("demo_pkg-1.0/../x", b""), *sdist_entries()]), "contains '..'"),
    "name mismatch": (sdist_zip(metadata=core_metadata("other", "1.0")), "the name in the core metadata"),
}


@pytest.mark.parametrize("case", list(ZIP_SDIST_CASES))
def test_sdist_zip_rejections(case: str) -> None:
    data, reason = ZIP_SDIST_CASES[case]
    assert reason in reject_reason(inspect_sdist_zip, data)


def test_reasons_never_carry_control_characters() -> None:
    reason = reject_reason(inspect_wheel, wheel(extra=[("/evil\x1b[31m", b"x")]))
    assert "\x1b" not in reason and "?" in reason


# -- a bad member after the metadata file: every member is checked -----------------------------

def _hard_link(name: str, target: str) -> tarfile.TarInfo:
    return symlink(name, target, kind=tarfile.LNKTYPE)


TAR_AFTER_PKG_INFO = {
    "dot-dot": ("../x", "member path '../x' contains '..'"),
    "absolute": ("/x", "absolute member path '/x'"),
    "nested dot-dot": ("demo_pkg-1.0/a/../../../x", "member path 'demo_pkg-1.0/a/../../../x' contains '..'"),
    "second top-level dir": ("other-1.0/x", "several top-level directories"),
    "file at the root": ("setup.py", "'setup.py' is outside the top-level directory"),
    "symlink out": (symlink("demo_pkg-1.0/evil", "../../etc/passwd"),
                    "link 'demo_pkg-1.0/evil' points outside the top-level directory"),
    "symlink to the root": (symlink("demo_pkg-1.0/a/evil", "../.."),
                            "link 'demo_pkg-1.0/a/evil' points outside the top-level directory"),
    "absolute symlink": (symlink("demo_pkg-1.0/evil", "/etc/passwd"),
                         "link 'demo_pkg-1.0/evil' points to an absolute path"),
    "hard link to another top": (_hard_link("demo_pkg-1.0/evil", "other-1.0/x"),
                                 "link 'demo_pkg-1.0/evil' points outside the top-level directory"),
    "hard link up": (_hard_link("demo_pkg-1.0/evil", "../x"),
                     "link 'demo_pkg-1.0/evil' points outside the top-level directory"),
    "duplicate PKG-INFO": (("demo_pkg-1.0/PKG-INFO", core_metadata(version="6.6.6")),
                           "duplicate member 'demo_pkg-1.0/PKG-INFO'"),
    "character device": (symlink("demo_pkg-1.0/tty", "", kind=tarfile.CHRTYPE),
                         "member 'demo_pkg-1.0/tty' is a device or a FIFO"),
    "FIFO": (symlink("demo_pkg-1.0/pipe", "", kind=tarfile.FIFOTYPE),
             "member 'demo_pkg-1.0/pipe' is a device or a FIFO"),
}


@pytest.mark.parametrize("case", list(TAR_AFTER_PKG_INFO))
def test_sdist_tar_refuses_a_bad_member_after_pkg_info(case: str) -> None:
    member, reason = TAR_AFTER_PKG_INFO[case]
    entry = (member, b"x") if isinstance(member, str) else member
    assert reject_reason(inspect_sdist_tar, tar_gz_of([*sdist_entries(), entry])) == reason


def test_sdist_tar_refuses_a_member_hidden_behind_a_garbage_header() -> None:
    """tarfile alone would take the garbage block for the end of the archive; GNU tar skips it and
    extracts the `../` member that follows, so the archive is refused as corrupt."""
    hidden = gzip.decompress(tar_gz_of([("../evil", b"x")]))
    body = gzip.decompress(tar_gz_of(sdist_entries()))
    end = len(body.rstrip(b"\0"))
    end += -end % 512  # the end of the last member's data: the end-of-archive zero blocks start here
    archive = gzip.compress(body[:end] + b"\xab" * 512 + hidden)
    assert reject_reason(inspect_sdist_tar, archive) == "corrupt tar.gz archive: a member header is invalid"


@pytest.mark.parametrize("cut", [1, 4, 7, 8])
def test_sdist_tar_cut_inside_the_gzip_trailer_is_refused(cut: int) -> None:
    """The tar ends before the gzip stream does: its CRC-32 and size (the last 8 bytes) are checked too."""
    assert reject_reason(inspect_sdist_tar, sdist_tar()[:-cut]) == "truncated gzip stream"


def test_sdist_tar_with_a_wrong_gzip_crc_is_refused() -> None:
    data = bytearray(sdist_tar())
    data[-6] ^= 1  # inside the CRC-32 of the trailer
    assert reject_reason(inspect_sdist_tar, bytes(data)) == "corrupt gzip stream"


def test_sdist_tar_accepts_links_that_stay_inside() -> None:
    inside = [symlink("demo_pkg-1.0/src/link", "../pyproject.toml"), symlink("demo_pkg-1.0/here", "."),
              _hard_link("demo_pkg-1.0/copy", "demo_pkg-1.0/pyproject.toml")]
    assert inspect_sdist_tar(io.BytesIO(tar_gz_of([*sdist_entries(), *inside])), DEMO).metadata["name"] == "demo-pkg"


ZIP_AFTER_METADATA = {
    "dot-dot": ("../x", "member path '../x' contains '..'"),
    "absolute": ("/x", "absolute member path '/x'"),
    "nested dot-dot": ("demo_pkg/../../x", "member path 'demo_pkg/../../x' contains '..'"),
}


@pytest.mark.parametrize("case", list(ZIP_AFTER_METADATA))
def test_wheel_refuses_a_bad_member_after_metadata(case: str) -> None:
    name, reason = ZIP_AFTER_METADATA[case]
    entries = [*wheel_entries(), (name, b"x")]
    assert entries[1][0].endswith(".dist-info/METADATA")  # the bad member comes after it in both directories
    assert reject_reason(inspect_wheel, zip_of(entries)) == reason


ZIP_SDIST_AFTER_PKG_INFO = {
    **ZIP_AFTER_METADATA,
    "second top-level dir": ("other-1.0/x", "several top-level directories"),
    "file at the root": ("setup.py", "'setup.py' is outside the top-level directory"),
}


@pytest.mark.parametrize("case", list(ZIP_SDIST_AFTER_PKG_INFO))
def test_sdist_zip_refuses_a_bad_member_after_pkg_info(case: str) -> None:
    name, reason = ZIP_SDIST_AFTER_PKG_INFO[case]
    assert reject_reason(inspect_sdist_zip, zip_of([*sdist_entries(), (name, b"x")])) == reason


def test_too_many_members_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("registry_shared.inspection.rules.MAX_MEMBERS", 5)
    extra = [(f"demo_pkg-1.0/m{i}.py", b"") for i in range(3)]
    assert reject_reason(inspect_sdist_tar, tar_gz_of([*sdist_entries(), *extra])) == "too many members"
    assert reject_reason(inspect_sdist_zip, zip_of([*sdist_entries(), *extra])) == "too many members"


# -- malformed bytes: whatever the parser raises is a content problem, a failing read is not --------

MALFORMED = {
    # tarfile raises ValueError for these PAX fields (int() of the text).
    "PAX GNU.sparse.size not a number": (
        inspect_sdist_tar,
        tar_gz_of([*sdist_entries(), pax_member("demo_pkg-1.0/x", b"abc", {"GNU.sparse.size": "abc"})]),
        "corrupt tar.gz archive"),
    "PAX GNU.sparse.map not numbers": (
        inspect_sdist_tar,
        tar_gz_of([*sdist_entries(), pax_member("demo_pkg-1.0/x", b"abc", {"GNU.sparse.map": "a,b"})]),
        "corrupt tar.gz archive"),
    "PAX size negative": (  # tarfile.StreamError: a forward-only stream cannot seek back
        inspect_sdist_tar,
        tar_gz_of([*sdist_entries(), pax_member("demo_pkg-1.0/x", b"abc", {"size": "-100000"})]),
        "corrupt tar.gz archive"),
    # zipfile raises NotImplementedError("zip file version 25.5").
    "wheel with a flipped version field": (inspect_wheel, flip_zip_version(wheel()), "corrupt zip archive"),
    "zip sdist with a flipped version field": (inspect_sdist_zip, flip_zip_version(sdist_zip()), "corrupt zip archive"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_archives_are_invalid_not_errors(case: str) -> None:
    check, data, reason = MALFORMED[case]
    assert reject_reason(check, data) == reason


class FailingStream(CountingStream):
    """Serves `data` up to `fail_at` bytes, then fails as a storage read does."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        super().__init__(data)
        self.fail_at = fail_at

    def read(self, size: int = -1) -> bytes:
        if self.bytes_read >= self.fail_at:
            raise ObjectReadError("streamed read failed: ConnectionResetError")
        return super().read(min(size, self.fail_at - self.bytes_read) if size >= 0 else self.fail_at)


def test_a_read_failing_after_pkg_info_is_not_a_content_problem() -> None:
    data = tar_gz_of([*sdist_entries(), ("demo_pkg-1.0/data.bin", os.urandom(1024 * 1024))])
    stream = FailingStream(data, fail_at=len(data) // 2)
    with pytest.raises(ObjectReadError):
        inspect_sdist_tar(stream, DEMO)


# -- reasons are printable ----------------------------------------------------------------------

def test_an_undecodable_member_name_gives_a_printable_reason() -> None:
    # tar_gz_of writes the surrogate as the raw byte 0xff; tarfile reads it back as the lone surrogate.
    data = tar_gz_of([*sdist_entries(), ("/x\udcff\u202e", b"")])
    assert b"/x\xff" in gzip.decompress(data)
    reason = reject_reason(inspect_sdist_tar, data)
    assert reason == "absolute member path '/x??'"
    reason.encode("utf-8")  # a lone surrogate would raise here


# -- core metadata versions ---------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.9", "2.10"])
def test_metadata_versions_1_0_to_any_2_x_are_accepted(version: str) -> None:
    metadata = core_metadata().replace(b"Metadata-Version: 2.1", f"Metadata-Version: {version}".encode())
    for check, data in ((inspect_wheel, wheel(metadata=metadata)), (inspect_sdist_tar, sdist_tar(metadata=metadata)),
                        (inspect_sdist_zip, sdist_zip(metadata=metadata))):
        assert check(io.BytesIO(data), DEMO).metadata["metadata_version"] == version


def test_metadata_without_a_version_field_is_accepted() -> None:
    metadata = core_metadata().replace(b"Metadata-Version: 2.1\n", b"")
    assert "metadata_version" not in inspect_wheel(io.BytesIO(wheel(metadata=metadata)), DEMO).metadata


@pytest.mark.parametrize("version", ["3.0", "10.1", "two", "2"])
def test_other_metadata_versions_are_refused(version: str) -> None:
    metadata = core_metadata().replace(b"Metadata-Version: 2.1", f"Metadata-Version: {version}".encode())
    assert reject_reason(inspect_wheel, wheel(metadata=metadata)) == (
        f"unsupported Metadata-Version '{version}' (1.0 to 2.x are accepted)")


@pytest.mark.parametrize("error", [ValueError("x"), NotImplementedError("zip file version 25.5"), struct.error("x"),
                                   OverflowError("x"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x"), KeyError("x"),
                                   IndexError("x"), EOFError(), zlib.error("x"), tarfile.ReadError("x"),
                                   RecursionError()])
def test_every_parser_error_is_a_content_problem(error: Exception) -> None:
    with pytest.raises(InvalidDistribution, match="corrupt tar.gz archive") as info, _content_errors(
            "corrupt tar.gz archive"):
        raise error
    assert info.value.__cause__ is error


@pytest.mark.parametrize("error", [ObjectReadError("streamed read failed"), MemoryError()])
def test_a_failing_read_or_a_process_short_of_memory_is_not(error: Exception) -> None:
    with pytest.raises(type(error)), _content_errors("corrupt zip archive"):
        raise error
