"""Archive inspection rules (SPEC §4 "Contents are checked") on archives built in memory."""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import warnings

import pytest

from metadata_worker.adapters.readers import ObjectReadError, RangedReader
from metadata_worker.inspect import (
    ArchiveFormat,
    Expected,
    InvalidDistribution,
    archive_format,
    inspect_sdist_tar,
    inspect_sdist_zip,
    inspect_wheel,
)
from tests.unit.worker.worker_archives import (
    core_metadata,
    corrupt_wheel,
    sdist_entries,
    sdist_tar,
    sdist_zip,
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


def test_tar_stops_reading_once_pkg_info_is_found() -> None:
    top = "demo_pkg-1.0"
    big = os.urandom(4 * 1024 * 1024)  # incompressible, so the compressed stream is large too
    data = tar_gz_of([(f"{top}/PKG-INFO", core_metadata()), (f"{top}/data.bin", big)])
    stream = CountingStream(data)
    inspect_sdist_tar(stream, DEMO)
    assert stream.bytes_read < len(data) // 4


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

def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


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
    "escaping symlink": (tar_gz_of([_symlink("demo_pkg-1.0/evil", "../../etc/passwd"), *sdist_entries()]),
                         "link 'demo_pkg-1.0/evil' points outside the archive"),
    "absolute symlink": (tar_gz_of([_symlink("demo_pkg-1.0/evil", "/etc/passwd"), *sdist_entries()]),
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
