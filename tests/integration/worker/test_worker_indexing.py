"""metadata-worker end to end against real MongoDB-wire, S3 and RabbitMQ servers."""
from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp

from metadata_worker.app import CONSUMER
from registry_shared.events import (
    DistributionIndexed,
    DistributionRejected,
    FileDeleted,
    IndexChanged,
    Scope,
)
from tests.unit.worker.worker_archives import core_metadata, sdist_tar, sdist_zip, tar_gz_of, wheel

WHEEL = "demo_pkg-1.0-py3-none-any.whl"


async def test_stored_wheel_becomes_installable_everywhere(worker) -> None:
    project = await worker.project("acme/platform", "api")
    root_id, sub_id = project["ancestor_ids"]
    data = wheel()
    event = await worker.store_distribution(project["_id"], WHEEL, data,
                                            form={"keywords": "from,the,form", "summary": "form summary"})
    await worker.publish(event, "corr-wheel-1")

    changed = await worker.next_event(IndexChanged.kind)
    verdict = await worker.next_event(DistributionIndexed.kind)
    assert changed.event.scopes == [Scope(kind="project", id=project["_id"]), Scope(kind="group", id=root_id),
                                    Scope(kind="group", id=sub_id)]
    assert changed.event.names == ["demo-pkg"]
    # The verdict also carries what the audit record (package_published) needs.
    assert verdict.event == DistributionIndexed(file_id=event.file_id, project_id=project["_id"], filename=WHEEL,
                                                upload_id=event.upload_id, name=verdict.event.name, version="1.0",
                                                uploader=event.uploader, package_id=verdict.event.package_id)
    assert verdict.event.name.lower().replace("_", "-") == "demo-pkg"
    assert changed.correlation_id == verdict.correlation_id == "corr-wheel-1"
    assert await worker.next_outcome("distribution.stored") == "indexed"

    doc = await worker.packages.get_file(event.file_id)
    metadata = core_metadata("demo-pkg", "1.0")
    assert doc is not None and doc.state == "installable"
    assert verdict.event.package_id == doc.package_id is not None  # the package the file now belongs to
    assert doc.summary == "demo summary"  # from the wheel, which wins over the form
    assert doc.keywords == "from,the,form"  # from the form, which the wheel lacks
    assert doc.requires_python == ">=3.8"
    assert doc.requires_dist == ("requests>=2", "attrs; extra == 'x'")
    assert doc.metadata_version == "2.1" and doc.description_content_type == "text/markdown"
    assert doc.metadata_sha256 == hashlib.sha256(metadata).hexdigest()
    assert doc.indexed_at is not None
    assert await worker.packages.get_core_metadata(event.file_id) == metadata
    package = await worker.mongo.packages.find_one({"_id": doc.package_id})
    assert (package["project_id"], package["name"], package["version"]) == (project["_id"], "demo-pkg", "1")
    assert (package["display_name"], package["display_version"]) == ("demo_pkg", "1.0")

    for kind, scope_id in (("project", project["_id"]), ("group", root_id), ("group", sub_id)):
        page = await worker.packages.get_package_page(kind, scope_id, "demo-pkg")
        assert page is not None and page.versions == ("1.0",), (kind, scope_id)
        [entry] = page.files
        assert entry.filename == WHEEL and entry.sha256 == event.sha256 and entry.size == len(data)
        assert entry.project_id == project["_id"] and entry.requires_python == ">=3.8"
        assert entry.core_metadata_sha256 == doc.metadata_sha256
        assert entry.upload_time.endswith("Z")
        index = await worker.packages.get_index(kind, scope_id)
        assert index is not None and index.names == ("demo-pkg",)

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{worker.base_url}/-/ready") as response:
            assert response.status == 200
            assert (await response.json())["checks"] == {"mongodb": True, "s3": True, "amqp": True}
        async with http.get(f"{worker.base_url}/metrics") as response:
            text = await response.text()
            assert 'registry_worker_messages_total{kind="distribution.stored",outcome="indexed"}' in text


async def test_group_pages_hold_the_files_of_every_descendant_project(worker) -> None:
    api = await worker.project("acme/platform", "api")
    tools = await worker.project("acme", "tools")
    root_id = tools["ancestor_ids"][0]
    first = await worker.store_distribution(api["_id"], WHEEL, wheel())
    second = await worker.store_distribution(tools["_id"], "demo_pkg-1.10-py3-none-any.whl",
                                             wheel(version="1.10"))
    third = await worker.store_distribution(tools["_id"], "other-2.0.tar.gz",
                                            sdist_tar(name="other", version="2.0"))
    for event in (first, second, third):  # concurrently: the worker prefetches several messages
        await worker.publish(event, f"corr-{event.file_id}")
    for _ in range(3):
        assert (await worker.next_event(DistributionIndexed.kind)).event.file_id in {
            first.file_id, second.file_id, third.file_id}

    group_page = await worker.packages.get_package_page("group", root_id, "demo-pkg")
    assert [(f.filename, f.project_id) for f in group_page.files] == [
        (WHEEL, api["_id"]), ("demo_pkg-1.10-py3-none-any.whl", tools["_id"])]
    assert group_page.versions == ("1.0", "1.10")
    assert (await worker.packages.get_index("group", root_id)).names == ("demo-pkg", "other")
    sub_page = await worker.packages.get_package_page("group", api["ancestor_ids"][1], "demo-pkg")
    assert [f.filename for f in sub_page.files] == [WHEEL]
    assert (await worker.packages.get_index("project", tools["_id"])).names == ("demo-pkg", "other")
    assert (await worker.packages.get_index("project", api["_id"])).names == ("demo-pkg",)


async def test_sdists_are_read_from_s3_by_stream_and_by_range(worker) -> None:
    project = await worker.project()
    # Incompressible bulk after PKG-INFO: the tar stream is read to its end, chunk by chunk.
    bulky_tar = tar_gz_of([("demo_pkg-1.0/PKG-INFO", core_metadata()),
                           ("demo_pkg-1.0/data.bin", os.urandom(2 * 1024 * 1024))])
    tar_event = await worker.store_distribution(project["_id"], "demo_pkg-1.0.tar.gz", bulky_tar)
    zip_event = await worker.store_distribution(project["_id"], "demo_pkg-1.0.zip", sdist_zip())
    await worker.publish(tar_event, "corr-tar")
    await worker.publish(zip_event, "corr-zip")
    indexed = {(await worker.next_event(DistributionIndexed.kind)).event.file_id for _ in range(2)}
    assert indexed == {tar_event.file_id, zip_event.file_id}
    page = await worker.packages.get_package_page("project", project["_id"], "demo-pkg")
    assert sorted(f.filename for f in page.files) == ["demo_pkg-1.0.tar.gz", "demo_pkg-1.0.zip"]
    assert await worker.packages.get_core_metadata(tar_event.file_id) == core_metadata()


async def test_bad_archive_is_rejected_and_leaves_nothing(worker) -> None:
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, sdist_tar())  # a tar.gz named .whl
    assert await worker.store.size(event.object_key) is not None
    await worker.publish(event, "corr-bad")

    verdict = await worker.next_event(DistributionRejected.kind)
    assert verdict.event.reason == "Invalid distribution file: a wheel (.whl) must be a zip archive"
    assert verdict.event.upload_id == event.upload_id and verdict.correlation_id == "corr-bad"
    assert await worker.next_outcome("distribution.stored") == "rejected"
    assert await worker.packages.get_file(event.file_id) is None
    assert await worker.store.size(event.object_key) is None
    assert await worker.packages.get_core_metadata(event.file_id) is None
    assert await worker.packages.get_package_page("project", project["_id"], "demo-pkg") is None


async def test_name_mismatch_is_rejected_with_the_reason(worker) -> None:
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel(metadata=core_metadata("evil", "1.0")))
    await worker.publish(event, "corr-mismatch")
    verdict = await worker.next_event(DistributionRejected.kind)
    assert verdict.event.reason == ("Invalid distribution file: the name in the core metadata ('evil') "
                                    "does not match the file name (demo_pkg)")


async def test_poison_messages_land_in_the_dead_letter_queue(worker) -> None:
    garbled = await worker.publish_raw(b"{not json", "distribution.stored", "distribution.stored")
    dead = await worker.next_dead_letter()
    assert dead.message_id == garbled and dead.body == b"{not json"
    assert await worker.next_outcome("distribution.stored") == "poisoned"

    unknown = await worker.publish_raw(b"{}", "something.else", "file.deleted")
    dead = await worker.next_dead_letter()
    assert dead.message_id == unknown
    assert await worker.next_outcome("other") == "poisoned"


async def test_redelivered_message_changes_nothing(worker) -> None:
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel())
    await worker.publish(event, "corr-once")
    await worker.next_event(DistributionIndexed.kind)
    before = await worker.snapshot()
    assert before["distributions"][0]["state"] == "installable"

    await worker.publish(event, "corr-once")  # the same message again
    again = await worker.next_event(DistributionIndexed.kind)
    assert again.event.file_id == event.file_id
    assert (await worker.next_event(IndexChanged.kind)).event.names == ["demo-pkg"]
    assert await worker.snapshot() == before


async def test_transient_failure_is_retried_then_dead_lettered(worker) -> None:
    project = await worker.project()
    # Never marked stored, and the message (an earlier publisher's) names no upload that awaits it: the
    # worker cannot act on it yet, which is a transient condition.
    event = await worker.store_distribution(project["_id"], WHEEL, wheel(), state="uploading")
    event = event.model_copy(update={"upload_id": ""})
    await worker.publish(event, "corr-stuck")

    retried = 0
    while (outcome := await worker.next_outcome("distribution.stored")) == "retried":
        retried += 1
    assert outcome == "dead_lettered" and retried >= 1  # retried every 0.2 s for the 1 s window
    dead = await worker.next_dead_letter()
    assert dead.headers["x-retries"] == retried and dead.correlation_id == "corr-stuck"
    assert dead.type == "distribution.stored"
    # Given up on: the filename is free again (test_worker_retries.py has the details).
    assert await worker.packages.get_file(event.file_id) is None


async def test_deleted_file_objects_are_removed(worker) -> None:
    await worker.store.put_bytes("files/1/u/a.whl", b"a")
    await worker.store.put_bytes("files/1/u/a.whl.metadata", b"m")
    await worker.publish(FileDeleted(file_id=1, project_id=1,
                                     object_keys=["files/1/u/a.whl", "files/1/u/a.whl.metadata", "files/1/u/gone"]),
                         "corr-delete")
    assert await worker.next_outcome("file.deleted") == "deleted"
    assert await worker.store.size("files/1/u/a.whl") is None
    assert await worker.store.size("files/1/u/a.whl.metadata") is None


class HeldDistributions:
    """The worker's Distributions port, holding each inspection until the test lets it go."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def inspect(self, object_key, filename, expected):
        self.entered.set()
        await self.release.wait()
        return await self.inner.inspect(object_key, filename, expected)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def test_shutdown_finishes_the_message_in_hand_and_stops_consuming(worker) -> None:
    service = worker.app[CONSUMER].service
    held = HeldDistributions(service.distributions)
    service.distributions = held
    project = await worker.project()
    event = await worker.store_distribution(project["_id"], WHEEL, wheel())
    await worker.publish(event, "corr-shutdown")
    await asyncio.wait_for(held.entered.wait(), 20)

    stopping = asyncio.create_task(worker.stop_worker())
    later = await worker.store_distribution(project["_id"], "demo_pkg-2.0-py3-none-any.whl", wheel(version="2.0"))
    await worker.publish(later, "corr-later")
    held.release.set()
    await asyncio.wait_for(stopping, 20)

    assert (await worker.next_event(DistributionIndexed.kind)).event.file_id == event.file_id
    assert (await worker.packages.get_file(event.file_id)).state == "installable"
    # The message published while stopping was not taken: it waits for the next worker.
    assert await worker.queued() == 1
    assert (await worker.packages.get_file(later.file_id)).state == "processing"
