"""The streaming inspector's bounds and lifecycle: flat memory over a large member, an early verdict while
the upload goes on, abort, and real distributions built by the project's own toolchain."""
from __future__ import annotations

import base64
import hashlib
import os
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry_shared.domain.versions import canonical_version
from registry_shared.inspection import Expected, InvalidDistribution, StreamingInspector
from tests.e2e.packages import build_package
from tests.unit.inspection.feeding import CHUNK_SIZES, DEMO, SDIST_TAR, WHEEL, accepted, verdict
from tests.unit.worker.worker_archives import record_hash, sdist_tar, wheel_entries

BLOCK = os.urandom(1024 * 1024)
CHUNK = 64 * 1024


def _stored_wheel(blob_blocks: int) -> Iterator[bytes]:
    """A wheel whose `demo_pkg/blob.bin` is `blob_blocks` MiB stored, generated chunk by chunk (never whole)."""
    crc, sha = 0, hashlib.sha256()
    for _ in range(blob_blocks):
        crc = zlib.crc32(BLOCK, crc)
        sha.update(BLOCK)
    size = blob_blocks * len(BLOCK)
    digest = "sha256=" + base64.urlsafe_b64encode(sha.digest()).rstrip(b"=").decode()
    small = [e for e in wheel_entries() if not e[0].endswith("/RECORD")]
    record = "\n".join([*(f"{n},{record_hash(d)},{len(d)}" for n, d in small),
                        f"demo_pkg/blob.bin,{digest},{size}", "demo_pkg-1.0.dist-info/RECORD,,", ""]).encode()
    members = [(n, d, zlib.crc32(d), len(d)) for n, d in small]
    members.insert(1, ("demo_pkg/blob.bin", None, crc, size))
    members.append(("demo_pkg-1.0.dist-info/RECORD", record, zlib.crc32(record), len(record)))
    central, offset = [], 0
    for name, data, member_crc, member_size in members:
        raw = name.encode()
        header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, member_crc, member_size,
                             member_size, len(raw), 0) + raw
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, member_crc,
                                   member_size, member_size, len(raw), 0, 0, 0, 0, 0, offset) + raw)
        yield header
        if data is None:
            for _ in range(blob_blocks):
                for start in range(0, len(BLOCK), CHUNK):
                    yield BLOCK[start: start + CHUNK]
        else:
            yield data
        offset += len(header) + member_size
    directory = b"".join(central)
    yield directory + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory),
                                  offset, 0)


def test_a_small_generated_wheel_is_accepted() -> None:
    assert accepted(WHEEL, b"".join(_stored_wheel(2))).members == 5


def test_memory_stays_flat_over_a_200_mb_member() -> None:
    tracemalloc.start()
    try:
        with StreamingInspector(WHEEL, DEMO) as inspector:
            for chunk in _stored_wheel(200):
                inspector.feed(chunk)
            result = inspector.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.uncompressed_size > 200 * 1024 * 1024
    assert inspector.bytes_fed > 200 * 1024 * 1024
    # The pipe (1 MiB), a chunk, the reader's 64 KiB pieces: a few MiB whatever the size.
    assert peak < 4 * 1024 * 1024, peak


def test_bad_bytes_are_reported_while_the_upload_goes_on() -> None:
    inspector = StreamingInspector(WHEEL, DEMO)
    fed = 0
    with pytest.raises(InvalidDistribution, match="must be a zip archive"):
        for _ in range(1000):
            inspector.feed(b"\x1f\x8b" + os.urandom(CHUNK - 2))
            fed += 1
    assert fed <= 20  # the pipe holds 1 MiB: the producer learns within a few chunks, not at the end
    with pytest.raises(InvalidDistribution, match="must be a zip archive"):
        inspector.finish()


def test_abort_stops_the_reader_and_never_raises() -> None:
    before = threading.active_count()
    inspector = StreamingInspector(SDIST_TAR, DEMO)
    inspector.feed(os.urandom(10))
    inspector.abort()
    inspector.abort()
    assert threading.active_count() == before
    with pytest.raises(InvalidDistribution):
        inspector.feed(b"more")


def test_a_producer_blocked_on_a_full_pipe_is_released_by_abort() -> None:
    inspector = StreamingInspector(WHEEL, DEMO)
    stream = _stored_wheel(8)
    inspector.feed(next(stream))  # the local header: the reader now waits for 64 KiB pieces
    done = threading.Event()

    def produce() -> None:
        try:
            for chunk in stream:
                inspector.feed(chunk)
        except InvalidDistribution:
            pass
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    inspector.abort()
    assert done.wait(5)


def test_the_context_manager_aborts_an_unfinished_inspection() -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError), StreamingInspector(WHEEL, DEMO) as inspector:
        inspector.feed(b"PK\x03\x04")
        raise RuntimeError("the S3 upload failed")
    assert threading.active_count() == before


def test_a_file_name_that_is_no_distribution_is_refused_at_once() -> None:
    with pytest.raises(InvalidDistribution, match="unsupported file type"):
        StreamingInspector("demo_pkg-1.0.tar.bz2", DEMO)


def test_max_metadata_is_the_callers() -> None:
    inspector = StreamingInspector(SDIST_TAR, DEMO, max_metadata=10)
    inspector.feed(sdist_tar())
    with pytest.raises(InvalidDistribution, match="PKG-INFO is too large"):
        inspector.finish()


# -- real distributions -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A wheel and an sdist built by setuptools through `python -m build`, as the e2e suite builds them."""
    return build_package(tmp_path_factory.mktemp("built"), "real-pkg", "2.0.post1", 7)


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_distributions_built_by_the_toolchain_are_accepted(built: list[Path], chunk: int | None) -> None:
    expected = Expected("real-pkg", canonical_version("2.0.post1"), "real_pkg", "2.0.post1")
    for path in built:
        result = verdict(path.name, path.read_bytes(), chunk, expected)
        assert not isinstance(result, str), (path.name, result)
        assert result.metadata["name"] == "real-pkg"
