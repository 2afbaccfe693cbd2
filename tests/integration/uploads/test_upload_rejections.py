"""Every reason an upload is refused, through upload-api and the real metadata-worker (SPEC §4).

Each case posts twine's form and checks the exact 400 body the uploader gets, in the same response, and
that neither MongoDB nor S3 holds anything of that upload afterwards: no file or package document, no
core metadata, no page, no object (not even an aborted multipart upload's parts, which minio would list).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from metadata_worker.app import create_app as create_worker_app
from metadata_worker.settings import WorkerSettings
from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.domain.access import RegistryAccess, Role, Visibility
from registry_shared.topology import dead_letter_exchange, dead_letter_queue, worker_queue
from tests.support.servers import settings_from_env
from tests.unit.worker.worker_archives import (
    core_metadata,
    corrupt_wheel,
    flip_bit,
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
from upload_api.adapters.objects import WHOLE_MAX
from upload_api.app import create_app as create_upload_app
from upload_api.settings import UploadSettings

MAX_SIZE = 200_000
PART_SIZE = 5 * 1024 * 1024  # S3's smallest, so a few MB make a multipart upload
SEPARATORS = "Invalid file name: it must not contain path separators or control characters"
DIGEST_MISMATCH = "The digest supplied does not match a digest calculated from the uploaded file."
PACKAGE_COLLECTIONS = ("distributions", "packages", "core_metadata", "simple_pages")
WHEEL = "demo_pkg-1.0-py3-none-any.whl"


@dataclass
class Registry:
    client: TestClient
    mongo: Mongo
    store: ObjectStore
    token: str
    url: str
    last_reason: str | None = None  # the reason phrase of the last upload's status line

    async def upload(self, data: bytes, filename: str = WHEEL, name: str = "demo_pkg", version: str = "1.0",
                     **fields: str) -> tuple[int, dict[str, Any]]:
        """twine's form, written out by hand: the file name goes as given (a client library would escape a
        `\\` or percent-encode a control character on the way)."""
        boundary = uuid.uuid4().hex
        body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                        for key, value in {"name": name, "version": version, "filetype": "bdist_wheel",
                                           **fields}.items())
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{quoted}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        basic = base64.b64encode(f"__token__:{self.token}".encode()).decode()
        response = await self.client.post(self.url, data=body, headers={
            "Authorization": f"Basic {basic}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        self.last_reason = response.reason
        return response.status, await response.json()

    async def assert_nothing_kept(self) -> None:
        for collection in PACKAGE_COLLECTIONS:
            assert await self.mongo.db[collection].count_documents({}) == 0, collection
        assert await self.objects() == []
        assert await self.unfinished_uploads() == []

    async def objects(self) -> list[str]:
        def _list() -> list[str]:
            s = self.store
            return [o.object_name for o in s.client.list_objects(s.bucket, prefix=s.prefix, recursive=True)]
        return await asyncio.to_thread(_list)

    async def unfinished_uploads(self) -> list[str]:
        """Multipart uploads begun under this test's prefix and neither completed nor aborted."""
        def _list() -> list[str]:
            s = self.store
            result = s.client._list_multipart_uploads(s.bucket, prefix=s.prefix)  # noqa: SLF001
            return [u.object_name for u in result.uploads]
        return await asyncio.to_thread(_list)


@contextlib.asynccontextmanager
async def running_registry(service_env: dict[str, str], max_size: int) -> AsyncIterator[Registry]:
    """upload-api (5 MiB parts) and the metadata-worker on this test's servers; a developer's token."""
    upload_settings = settings_from_env(UploadSettings, service_env, upload_max_file_size=max_size,
                                        upload_part_size=PART_SIZE, upload_verdict_timeout=20)
    worker_settings = settings_from_env(WorkerSettings, service_env, http_host="127.0.0.1", http_port=0,
                                        worker_retry_delay=0, worker_retry_window=5)
    worker = web.AppRunner(create_worker_app(worker_settings))
    await worker.setup()
    await web.TCPSite(worker, "127.0.0.1", 0).start()
    client = TestClient(TestServer(create_upload_app(upload_settings)))
    await client.start_server()
    mongo = Mongo.connect(upload_settings.mongodb_url, upload_settings.mongodb_database)
    try:
        tenancy = TenancyRepository(mongo)
        user = await tenancy.create_user("uploader")
        await tenancy.create_group("team", None, Visibility.PRIVATE)
        project = await tenancy.create_project("team/app", None, Visibility.PRIVATE, RegistryAccess.ENABLED)
        await tenancy.add_member(user["_id"], "project", project["_id"], Role.DEVELOPER)
        _, token = await tenancy.create_personal_token(user["_id"], ["api"], None)
        yield Registry(client, mongo, ObjectStore.from_settings(upload_settings), token,
                       f"/api/v4/projects/{project['_id']}/packages/pypi")
    finally:
        await client.close()
        await worker.cleanup()
        await _delete_queues(worker_settings)
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()


@pytest.fixture
async def registry(service_env: dict[str, str]) -> AsyncIterator[Registry]:
    async with running_registry(service_env, MAX_SIZE) as registry:
        yield registry


async def _delete_queues(settings: WorkerSettings) -> None:
    """This test's work queue, dead-letter queue and exchanges."""
    broker = Broker(settings.amqp_url, settings.amqp_exchange)
    await broker.connect()
    try:
        queue = worker_queue(settings.amqp_exchange)
        for name in (queue, dead_letter_queue(queue)):
            await broker.channel.queue_delete(name)
        for exchange in (settings.amqp_exchange, dead_letter_exchange(settings.amqp_exchange)):
            await broker.channel.exchange_delete(exchange)
    finally:
        await broker.close()


def bad(reason: str) -> dict[str, str]:
    """The body GitLab's `bad_request!` writes (SPEC §4); the status line carries `reason` too."""
    return {"message": f"400 Bad request - {reason}"}


def invalid(reason: str) -> dict[str, str]:
    return bad(f"Invalid distribution file: {reason}")


# Refused by upload-api from the form and the stream: (file bytes, upload() keywords, body).
FORM_CASES: dict[str, tuple[bytes, dict[str, str], dict[str, str]]] = {
    "invalid version": (wheel(), {"version": "1.2.3-45-abcdefgh", "filename": "demo_pkg-1.2.3-py3-none-any.whl"},
                        bad("Validation failed: Version is invalid")),
    "invalid name": (wheel(), {"name": "-demo-"}, bad("Validation failed: Name is invalid")),
    "name disagrees with the file name": (wheel(), {"name": "other"},
        bad("Invalid file name: the name in the file name (demo-pkg) does not match the package name (other)")),
    "version disagrees with the file name": (wheel(), {"version": "2.0"},
        bad("Invalid file name: the version in the file name (1) does not match the package version (2.0)")),
    "not a distribution": (wheel(), {"filename": "demo_pkg-1.0.exe"},
        bad("Invalid file name: a distribution must be a wheel (.whl) or an sdist (.tar.gz, .zip)")),
    "other archive suffix": (sdist_tar(), {"filename": "demo_pkg-1.0.tar.bz2"},
        bad("Invalid file name: a distribution must be a wheel (.whl) or an sdist (.tar.gz, .zip)")),
    "unparsable wheel name": (wheel(), {"filename": "demo_pkg-1.0.whl"},
        bad("Invalid file name: Invalid wheel filename (wrong number of parts): 'demo_pkg-1.0'")),
    "slash": (wheel(), {"filename": "../demo_pkg-1.0-py3-none-any.whl"}, bad(SEPARATORS)),
    "backslash": (wheel(), {"filename": "x\\demo_pkg-1.0-py3-none-any.whl"}, bad(SEPARATORS)),
    "control character": (wheel(), {"filename": "demo_pkg-1.0-py3-none-any\t.whl"}, bad(SEPARATORS)),
    # aiohttp refuses other control characters in a part's headers before the file name is seen.
    "control character in a header": (wheel(), {"filename": "demo_pkg-1.0-py3-none-any\x07.whl"},
                                      bad("malformed multipart body")),
    "sha256 mismatch": (wheel(), {"sha256_digest": hashlib.sha256(b"other").hexdigest()}, bad(DIGEST_MISMATCH)),
    "md5 mismatch": (wheel(), {"md5_digest": hashlib.md5(b"other").hexdigest()}, bad(DIGEST_MISMATCH)),
    "blake2_256 mismatch": (wheel(), {"blake2_256_digest": hashlib.blake2b(b"other", digest_size=32).hexdigest()},
                            bad(DIGEST_MISMATCH)),
    "too large": (wheel(extra=[("demo_pkg/blob.bin", os.urandom(MAX_SIZE))]), {}, bad("File is too large")),
}

def _flipped_member(compression: int, pad: bytes = b"") -> bytes:
    """A wheel with one bit flipped inside the data of its member `demo_pkg/data.txt` (after `pad`)."""
    data = wheel(extra=[("demo_pkg/pad.bin", pad), ("demo_pkg/data.txt", b"hello world " * 300)])
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("demo_pkg/data.txt")
    if compression == zipfile.ZIP_STORED:
        data = zip_of(wheel_entries(extra=[("demo_pkg/data.txt", b"hello world " * 300)]), zipfile.ZIP_STORED)
        info = zipfile.ZipFile(io.BytesIO(data)).getinfo("demo_pkg/data.txt")
    return flip_bit(data, info.header_offset + 30 + len(info.filename) + 10)


# Refused for what the file holds (at the edge as it streams, or by the worker): (file name, bytes, body).
CONTENT_CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "wheel without METADATA": (WHEEL, zip_of(without(wheel_entries(), "/METADATA")),
                               invalid("missing .dist-info/METADATA")),
    "wheel without RECORD": (WHEEL, zip_of(without(wheel_entries(), "/RECORD")),
                             invalid("missing .dist-info/RECORD")),
    "sdist without PKG-INFO": ("demo_pkg-1.0.tar.gz", tar_gz_of(without(sdist_entries(), "PKG-INFO")),
                               invalid("missing PKG-INFO")),
    "sdist with PKG-INFO deeper down": ("demo_pkg-1.0.tar.gz",
                                        tar_gz_of([("demo_pkg-1.0/sub/PKG-INFO", core_metadata())]),
                                        invalid("missing PKG-INFO")),
    "sdist of two top-level directories": ("demo_pkg-1.0.zip", zip_of([("other-1.0/x", b""), *sdist_entries()]),
                                           invalid("several top-level directories")),
    "metadata name disagrees": (WHEEL, wheel(metadata=core_metadata("other", "1.0")), invalid(
        "the name in the core metadata ('other') does not match the file name (demo_pkg)")),
    "metadata version disagrees": ("demo_pkg-1.0.tar.gz", sdist_tar(metadata=core_metadata("demo-pkg", "1.1")), invalid(
        "the version in the core metadata ('1.1') does not match the file name (1.0)")),
    "zip bomb": (WHEEL, wheel(extra=[("demo_pkg/zeros.bin", bytes(20 * 1024 * 1024))]),
                 invalid("member 'demo_pkg/zeros.bin' has a suspicious compression ratio (zip bomb)")),
    "gzip bomb": ("demo_pkg-1.0.tar.gz",  # before PKG-INFO, so it has to be read through
                  tar_gz_of([("demo_pkg-1.0/zeros", bytes(40 * 1024 * 1024)), *sdist_entries()]),
                  invalid("suspicious compression ratio (gzip bomb)")),
    "absolute member path": (WHEEL, wheel(extra=[("/etc/cron.d/evil", b"x")]),
                             invalid("absolute member path '/etc/cron.d/evil'")),
    "'..' member path": ("demo_pkg-1.0.tar.gz", tar_gz_of([("demo_pkg-1.0/../../evil", b""), *sdist_entries()]),
                         invalid("member path 'demo_pkg-1.0/../../evil' contains '..'")),
    "corrupt zip": (WHEEL, corrupt_wheel(), invalid("corrupt zip archive")),
    "truncated tar.gz": ("demo_pkg-1.0.tar.gz", sdist_tar()[:-60], invalid("truncated gzip stream")),
    "a tar.gz named .whl": (WHEEL, sdist_tar(), invalid("a wheel (.whl) must be a zip archive")),
    "a zip named .tar.gz": ("demo_pkg-1.0.tar.gz", sdist_zip(),
                            invalid("a .tar.gz sdist must be a gzip-compressed tar archive")),
    "a gzip that is not a tar": ("demo_pkg-1.0.tar.gz", gzip.compress(b"no tar headers here" * 40),
                                 invalid("a .tar.gz sdist must be a gzip-compressed tar archive")),
    "a tar.gz named .zip": ("demo_pkg-1.0.zip", sdist_tar(), invalid("a .zip sdist must be a zip archive")),
    # Integrity, judged at the edge as the bytes stream (issue 13): pip would fail on these with BadZipFile.
    "a flipped bit in a member's compressed data": (WHEEL, _flipped_member(zipfile.ZIP_DEFLATED), invalid(
        "member 'demo_pkg/data.txt' is corrupt (its data does not inflate)")),
    "a flipped bit in a stored member": (WHEEL, _flipped_member(zipfile.ZIP_STORED), invalid(
        "member 'demo_pkg/data.txt' fails its CRC check")),
    "a member that differs from its RECORD hash": (WHEEL, zip_of(
        [(n, b"tampered" if n == "demo_pkg/data.txt" else d)
         for n, d in wheel_entries(extra=[("demo_pkg/data.txt", b"original")])]),
        invalid("member 'demo_pkg/data.txt' does not match its RECORD hash")),
    "wheel: '..' after METADATA": (WHEEL, zip_of([*wheel_entries(), ("demo_pkg/../../evil", b"x")]),
                                   invalid("member path 'demo_pkg/../../evil' contains '..'")),
    "wheel: absolute path after METADATA": (WHEEL, zip_of([*wheel_entries(), ("/etc/evil", b"x")]),
                                            invalid("absolute member path '/etc/evil'")),
    "sdist: '..' after PKG-INFO": ("demo_pkg-1.0.tar.gz",
                                   tar_gz_of([*sdist_entries(), ("demo_pkg-1.0/../../evil", b"x")]),
                                   invalid("member path 'demo_pkg-1.0/../../evil' contains '..'")),
    "sdist: absolute path after PKG-INFO": ("demo_pkg-1.0.tar.gz", tar_gz_of([*sdist_entries(), ("/etc/evil", b"x")]),
                                            invalid("absolute member path '/etc/evil'")),
    "sdist: a link out after PKG-INFO": ("demo_pkg-1.0.tar.gz", tar_gz_of(
        [*sdist_entries(), symlink("demo_pkg-1.0/evil", "../../etc/passwd")]),
        invalid("link 'demo_pkg-1.0/evil' points outside the top-level directory")),
}


@pytest.mark.parametrize("case", list(FORM_CASES))
async def test_form_and_stream_rejections_keep_nothing(registry: Registry, case: str) -> None:
    data, fields, body = FORM_CASES[case]
    assert await registry.upload(data, **fields) == (400, body)
    # twine, pdm and hatch print only the status line: it says why as well
    assert registry.last_reason == body["message"].removeprefix("400 Bad request - ")
    await registry.assert_nothing_kept()


@pytest.mark.parametrize("case", list(CONTENT_CASES))
async def test_content_rejections_reach_the_uploader_and_keep_nothing(registry: Registry, case: str) -> None:
    filename, data, body = CONTENT_CASES[case]
    assert len(data) < MAX_SIZE, "the limit would refuse it first"
    assert await registry.upload(data, filename=filename, sha256_digest=hashlib.sha256(data).hexdigest()) == (
        400, body)
    assert registry.last_reason == body["message"].removeprefix("400 Bad request - ")
    await registry.assert_nothing_kept()


def _streamed_cases() -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """Refusals of files larger than upload-api holds whole (WHOLE_MAX): judged by the streaming pass."""
    pad = os.urandom(WHOLE_MAX)  # incompressible: the archive is as large as it looks
    return {
        "a flipped bit in a member's compressed data": (WHEEL, _flipped_member(zipfile.ZIP_DEFLATED, pad), invalid(
            "member 'demo_pkg/data.txt' is corrupt (its data does not inflate)")),
        "a member that differs from its RECORD hash": (WHEEL, zip_of(
            [(n, b"tampered" if n == "demo_pkg/data.txt" else d)
             for n, d in wheel_entries(extra=[("demo_pkg/pad.bin", pad), ("demo_pkg/data.txt", b"original")])]),
            invalid("member 'demo_pkg/data.txt' does not match its RECORD hash")),
        "wheel: '..' after METADATA": (WHEEL, zip_of([*wheel_entries(extra=[("demo_pkg/pad.bin", pad)]),
                                                      ("demo_pkg/../../evil", b"x")]),
                                       invalid("member path 'demo_pkg/../../evil' contains '..'")),
        "sdist: a link out after PKG-INFO": ("demo_pkg-1.0.tar.gz", tar_gz_of(
            [*sdist_entries(), ("demo_pkg-1.0/pad.bin", pad), symlink("demo_pkg-1.0/evil", "../../etc/passwd")]),
            invalid("link 'demo_pkg-1.0/evil' points outside the top-level directory")),
    }


async def test_content_rejections_of_streamed_files_keep_nothing(service_env: dict[str, str]) -> None:
    """The same reasons when the file is too large to be held whole, and nothing kept (the refusal comes
    from the streaming pass, whose bytes were already on their way to S3)."""
    async with running_registry(service_env, 4 * 1024 * 1024) as registry:
        for case, (filename, data, body) in _streamed_cases().items():
            assert len(data) > WHOLE_MAX, case
            status = await registry.upload(data, filename=filename, sha256_digest=hashlib.sha256(data).hexdigest())
            assert status == (400, body), case
            await registry.assert_nothing_kept()
        # and a good file of that size is stored whole
        data = wheel(extra=[("demo_pkg/pad.bin", os.urandom(WHOLE_MAX))])
        assert await registry.upload(data) == (201, {"message": "201 Created"})
        [doc] = [d async for d in registry.mongo.distributions.find({})]
        stored = await registry.store.get_range(doc["object_key"], 0, len(data) + 1)
        assert (doc["size"], stored) == (len(data), data)


async def test_a_refused_file_name_is_free_for_the_right_bytes(registry: Registry) -> None:
    """Nothing of a refused upload stands in the way of the corrected one (same filename)."""
    assert (await registry.upload(zip_of(without(wheel_entries(), "/RECORD"))))[0] == 400
    status, body = await registry.upload(wheel())
    assert (status, body) == (201, {"message": "201 Created"})
    [doc] = [d async for d in registry.mongo.distributions.find({})]
    assert doc["state"] == "installable" and doc["sha256"] == hashlib.sha256(wheel()).hexdigest()
    assert len(await registry.objects()) == 1


async def test_multipart_uploads_are_whole_or_leave_nothing(service_env: dict[str, str]) -> None:
    """Above one part: a file of three parts is stored byte for byte; one refused in its third part (the size
    limit) or after its last (a digest) aborts or removes what it began."""
    payload = os.urandom(11 * 1024 * 1024)  # incompressible: the wheel is as large as it looks
    async with running_registry(service_env, 12 * 1024 * 1024) as registry:
        too_big = wheel(extra=[("demo_pkg/blob.bin", payload + os.urandom(2 * 1024 * 1024))])
        assert await registry.upload(too_big) == (400, bad("File is too large"))
        await registry.assert_nothing_kept()
        data = wheel(extra=[("demo_pkg/blob.bin", payload)])
        assert await registry.upload(data, md5_digest=hashlib.md5(b"x").hexdigest()) == (
            400, bad(DIGEST_MISMATCH))
        await registry.assert_nothing_kept()

        assert await registry.upload(data, sha256_digest=hashlib.sha256(data).hexdigest()) == (
            201, {"message": "201 Created"})
        [doc] = [d async for d in registry.mongo.distributions.find({})]
        assert (doc["state"], doc["size"]) == ("installable", len(data))
        stored = await registry.store.get_range(doc["object_key"], 0, len(data) + 1)
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
        assert await registry.unfinished_uploads() == []

        # The name taken: other bytes are refused once the reservation is known (the stream waits for it
        # after 1 MiB), identical ones are a 201; neither leaves a copy or a begun multipart upload.
        other = wheel(extra=[("demo_pkg/blob.bin", os.urandom(11 * 1024 * 1024))])
        assert await registry.upload(other, sha256_digest=hashlib.sha256(other).hexdigest()) == (
            400, bad("Validation failed: File name has already been taken"))
        assert await registry.upload(data, sha256_digest=hashlib.sha256(data).hexdigest()) == (
            201, {"message": "201 Created"})
        [kept] = await registry.objects()
        assert kept.endswith(doc["object_key"]) and await registry.unfinished_uploads() == []
        assert await registry.mongo.distributions.count_documents({}) == 1
