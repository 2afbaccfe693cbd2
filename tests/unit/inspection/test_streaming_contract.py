"""Today's rejection table (tests/unit/worker/test_worker_inspect.py), through the streaming inspector, fed
in chunks from one byte to the whole file: every reason is kept, and the verdict does not depend on the
chunk size."""
from __future__ import annotations

import gzip

import pytest

from tests.unit.inspection.feeding import CHUNK_SIZES, SDIST_TAR, SDIST_ZIP, WHEEL, WHOLE, accepted, reason, verdict
from tests.unit.worker import test_worker_inspect as worker
from tests.unit.worker.worker_archives import (
    core_metadata,
    corrupt_wheel,
    sdist_entries,
    sdist_tar,
    sdist_zip,
    tar_gz_of,
    wheel,
    wheel_entries,
    zip_of,
)

FILENAMES = {"inspect_wheel": WHEEL, "inspect_sdist_tar": SDIST_TAR, "inspect_sdist_zip": SDIST_ZIP}


def _table() -> dict[str, tuple[str, bytes, str, bool]]:
    """Every case of the worker's tables: (file name, bytes, reason, whether the reason is exact)."""
    cases: dict[str, tuple[str, bytes, str, bool]] = {}
    for name, (data, why) in worker.WHEEL_CASES.items():
        cases[f"wheel: {name}"] = (WHEEL, data, why, False)
    for name, (data, why) in worker.TAR_CASES.items():
        cases[f"tar: {name}"] = (SDIST_TAR, data, why, False)
    for name, (data, why) in worker.ZIP_SDIST_CASES.items():
        cases[f"zip sdist: {name}"] = (SDIST_ZIP, data, why, False)
    for name, (member, why) in worker.TAR_AFTER_PKG_INFO.items():
        entry = (member, b"x") if isinstance(member, str) else member
        cases[f"tar, after PKG-INFO: {name}"] = (SDIST_TAR, tar_gz_of([*sdist_entries(), entry]), why, True)
    for name, (member, why) in worker.ZIP_AFTER_METADATA.items():
        cases[f"wheel, after METADATA: {name}"] = (WHEEL, zip_of([*wheel_entries(), (member, b"x")]), why, True)
    for name, (member, why) in worker.ZIP_SDIST_AFTER_PKG_INFO.items():
        cases[f"zip sdist, after PKG-INFO: {name}"] = (SDIST_ZIP, zip_of([*sdist_entries(), (member, b"x")]), why,
                                                       True)
    for name, (check, data, why) in worker.MALFORMED.items():
        cases[f"malformed: {name}"] = (FILENAMES[check.__name__], data, why, True)
    cases["corrupt METADATA bytes"] = (WHEEL, corrupt_wheel(), "corrupt zip archive", True)
    cases["truncated wheel"] = (WHEEL, wheel()[: len(wheel()) // 2], "a wheel (.whl) must be a zip archive", True)
    cases["control characters"] = (WHEEL, wheel(extra=[("/evil\x1b[31m", b"x")]), "absolute member path '/evil?[31m'",
                                   True)
    cases["undecodable tar name"] = (SDIST_TAR, tar_gz_of([*sdist_entries(), ("/x\udcff\u202e", b"")]),
                                     "absolute member path '/x??'", True)
    for cut in (1, 4, 7, 8):
        cases[f"tar cut {cut} bytes into the gzip trailer"] = (SDIST_TAR, sdist_tar()[:-cut], "gzip stream", False)
    return cases


CASES = _table()


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
@pytest.mark.parametrize("case", list(CASES))
def test_todays_reasons_are_kept(case: str, chunk: int | None) -> None:
    filename, data, why, exact = CASES[case]
    got = reason(filename, data, chunk)
    assert got == why if exact else why in got


def test_a_member_hidden_behind_a_garbage_tar_header_is_refused() -> None:
    hidden = gzip.decompress(tar_gz_of([("../evil", b"x")]))
    body = gzip.decompress(tar_gz_of(sdist_entries()))
    end = len(body.rstrip(b"\0"))
    end += -end % 512
    archive = gzip.compress(body[:end] + b"\xab" * 512 + hidden)
    assert reason(SDIST_TAR, archive) == "corrupt tar.gz archive: a member header is invalid"


def test_data_after_the_end_of_the_tar_archive_is_refused() -> None:
    """`tar -i` reads on past the end-of-archive blocks; what it would find there is refused."""
    body = gzip.decompress(sdist_tar())
    hidden = gzip.decompress(tar_gz_of([("../evil", b"x")]))
    assert reason(SDIST_TAR, gzip.compress(body + hidden)) == (
        "corrupt tar.gz archive: data after the end of the archive")


@pytest.mark.parametrize("version", ["1.0", "2.1", "2.5", "2.10"])
def test_metadata_versions_are_accepted_in_every_format(version: str) -> None:
    metadata = core_metadata().replace(b"Metadata-Version: 2.1", f"Metadata-Version: {version}".encode())
    for filename, data in ((WHEEL, wheel(metadata=metadata)), (SDIST_TAR, sdist_tar(metadata=metadata)),
                           (SDIST_ZIP, sdist_zip(metadata=metadata))):
        assert accepted(filename, data).metadata["metadata_version"] == version


@pytest.mark.parametrize("chunk", CHUNK_SIZES)
def test_valid_archives_yield_their_metadata(chunk: int | None) -> None:
    result = accepted(WHEEL, wheel(), chunk)
    assert result.metadata_path == "demo_pkg-1.0.dist-info/METADATA"
    assert result.metadata_bytes == core_metadata("demo-pkg", "1.0")
    assert result.metadata["requires_dist"] == ["requests>=2", "attrs; extra == 'x'"]
    assert (result.members, result.uncompressed_size) == (4, sum(len(d) for _, d in wheel_entries()))
    assert accepted(SDIST_TAR, sdist_tar(), chunk).metadata_path == "demo_pkg-1.0/PKG-INFO"
    assert accepted(SDIST_ZIP, sdist_zip(), chunk).metadata_path == "demo_pkg-1.0/PKG-INFO"


def test_the_verdict_does_not_depend_on_the_chunk_size() -> None:
    for filename, data, _why, _exact in list(CASES.values())[::3]:
        verdicts = {str(verdict(filename, data, chunk)) for chunk in (1, 2, 3, 5, 7, 13, 512, 4096, 65536, None, WHOLE)}
        assert len(verdicts) == 1, verdicts
