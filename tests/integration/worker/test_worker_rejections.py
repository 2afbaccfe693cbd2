"""Archives refused by the worker reading them from the real S3: a bad member after the metadata file,
bytes that make a parser raise, and a member name that is not valid UTF-8. Each ends in a
`distribution.rejected` verdict (upload-api's 400) and leaves nothing behind; none is retried."""
from __future__ import annotations

import pytest

from registry_shared.events import DistributionRejected
from tests.unit.worker.worker_archives import (
    flip_zip_version,
    pax_member,
    sdist_entries,
    sdist_zip,
    symlink,
    tar_gz_of,
    wheel,
    wheel_entries,
    zip_of,
)

TAR, ZIP, WHEEL = "demo_pkg-1.0.tar.gz", "demo_pkg-1.0.zip", "demo_pkg-1.0-py3-none-any.whl"

CASES = {
    "tar: ../x after PKG-INFO": (TAR, tar_gz_of([*sdist_entries(), ("../x", b"x")]),
                                 "member path '../x' contains '..'"),
    "tar: /x after PKG-INFO": (TAR, tar_gz_of([*sdist_entries(), ("/x", b"x")]), "absolute member path '/x'"),
    "tar: second top-level dir after PKG-INFO": (TAR, tar_gz_of([*sdist_entries(), ("other-1.0/x", b"x")]),
                                                 "several top-level directories"),
    "tar: symlink out after PKG-INFO": (TAR, tar_gz_of([*sdist_entries(), symlink("demo_pkg-1.0/evil", "../../x")]),
                                        "link 'demo_pkg-1.0/evil' points outside the top-level directory"),
    "zip sdist: ../x after PKG-INFO": (ZIP, zip_of([*sdist_entries(), ("../x", b"x")]),
                                       "member path '../x' contains '..'"),
    "zip sdist: /x after PKG-INFO": (ZIP, zip_of([*sdist_entries(), ("/x", b"x")]), "absolute member path '/x'"),
    "zip sdist: second top-level dir after PKG-INFO": (ZIP, zip_of([*sdist_entries(), ("other-1.0/x", b"x")]),
                                                       "several top-level directories"),
    "wheel: ../x after METADATA": (WHEEL, zip_of([*wheel_entries(), ("../x", b"x")]),
                                   "member path '../x' contains '..'"),
    "wheel: /x after METADATA": (WHEEL, zip_of([*wheel_entries(), ("/x", b"x")]), "absolute member path '/x'"),
    "tar: PAX field that is not a number (ValueError)": (
        TAR, tar_gz_of([*sdist_entries(), pax_member("demo_pkg-1.0/x", b"abc", {"GNU.sparse.size": "abc"})]),
        "corrupt tar.gz archive"),
    "wheel: flipped version field (NotImplementedError)": (WHEEL, flip_zip_version(wheel()), "corrupt zip archive"),
    "zip sdist: flipped version field (NotImplementedError)": (ZIP, flip_zip_version(sdist_zip()),
                                                               "corrupt zip archive"),
    # tarfile reads the raw byte 0xff back as a lone surrogate, which no JSON encoder accepts.
    "tar: undecodable member name after PKG-INFO": (TAR, tar_gz_of([*sdist_entries(), ("/x\udcff", b"x")]),
                                                    "absolute member path '/x?'"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_refused_with_the_reason_and_nothing_left(worker, case: str) -> None:
    filename, data, reason = CASES[case]
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], filename, data)
    await worker.publish(event, "corr-refused")

    verdict = await worker.next_event(DistributionRejected.kind)
    assert verdict.event.reason == f"Invalid distribution file: {reason}"
    assert verdict.event.file_id == event.file_id and verdict.correlation_id == "corr-refused"
    assert await worker.next_outcome("distribution.stored") == "rejected"
    assert await worker.packages.get_file(event.file_id) is None
    assert await worker.store.size(event.object_key) is None
