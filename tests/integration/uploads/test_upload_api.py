"""upload-api against real MongoDB-wire, S3 and RabbitMQ servers, with a stand-in for the worker."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.domain.access import RegistryAccess, Role, Visibility
from tests.support.fake_worker import FakeWorker
from tests.unit.worker.worker_archives import record_of
from upload_api.app import create_app
from upload_api.settings import UploadSettings


def wheel_bytes(name: str = "demo", version: str = "1.0", payload: bytes = b"x = 1\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        members = {f"{name}/__init__.py": payload,
                   f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
        for path, data in members.items():
            zf.writestr(path, data)
        zf.writestr(f"{name}-{version}.dist-info/RECORD", record_of(
            [(path, data if isinstance(data, bytes) else data.encode()) for path, data in members.items()],
            f"{name}-{version}.dist-info/RECORD"))
    return buf.getvalue()


@pytest.fixture
async def harness(service_env) -> AsyncIterator[dict]:
    settings = UploadSettings(**{k.lower(): v for k, v in service_env.items()},
                              upload_max_file_size=100_000, upload_verdict_timeout=3)
    mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
    await mongo.ensure_indexes()
    tenancy, packages = TenancyRepository(mongo), PackageRepository(mongo)
    broker = Broker(settings.amqp_url, settings.amqp_exchange)
    await broker.connect()
    worker = FakeWorker(broker, packages, settings.amqp_exchange)
    await worker.start()
    dev = await tenancy.create_user("dev")
    outsider = await tenancy.create_user("outsider")
    await tenancy.create_group("team", None, Visibility.PRIVATE)
    project = await tenancy.create_project("team/app", None, Visibility.PRIVATE, RegistryAccess.ENABLED)
    await tenancy.add_member(dev["_id"], "project", project["_id"], Role.DEVELOPER)
    _, api = await tenancy.create_personal_token(dev["_id"], ["api"], None)
    _, read_only = await tenancy.create_personal_token(dev["_id"], ["read_api"], None)
    _, foreign = await tenancy.create_personal_token(outsider["_id"], ["api"], None)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    store = ObjectStore.from_settings(settings)
    try:
        yield {"client": client, "project": project, "api": api, "read_only": read_only, "foreign": foreign,
               "worker": worker, "mongo": mongo, "store": store, "settings": settings,
               "url": f"/api/v4/projects/{project['_id']}/packages/pypi"}
    finally:
        await client.close()
        await broker.close()
        await mongo.close()


def form(content: bytes, filename: str = "demo-1.0-py3-none-any.whl", name: str = "demo", version: str = "1.0",
         sha256: str | None = None, **extra: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("name", name)
    data.add_field("version", version)
    data.add_field("sha256_digest", sha256 or hashlib.sha256(content).hexdigest())
    for key, value in extra.items():
        data.add_field(key, value)
    data.add_field("content", content, filename=filename, content_type="application/octet-stream")
    return data


def auth(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


async def stored_objects(h: dict) -> list[str]:
    def _list() -> list[str]:
        s = h["store"]
        return [o.object_name for o in s.client.list_objects(s.bucket, prefix=s.prefix, recursive=True)]
    return await asyncio.to_thread(_list)


async def assert_nothing_kept(h: dict) -> None:
    assert await h["mongo"].distributions.count_documents({}) == 0
    assert await stored_objects(h) == []


async def test_upload_is_created(harness) -> None:
    h = harness
    r = await h["client"].post(h["url"], data=form(wheel_bytes()), headers=auth(h["api"]))
    assert r.status == 201, await r.text()
    assert await r.json() == {"message": "201 Created"}
    event = h["worker"].seen[0]
    assert event.form.name == "demo" and event.size > 0
    assert r.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("token_key", "status", "body"),
    [(None, 401, {"message": "401 Unauthorized"}), ("foreign", 404, {"message": "404 Not Found"}),
     ("read_only", 403, {"message": "403 Forbidden"})],
)
async def test_upload_credentials(harness, token_key, status, body) -> None:
    h = harness
    kwargs = {"headers": auth(h[token_key])} if token_key else {}
    r = await h["client"].post(h["url"], data=form(wheel_bytes()), **kwargs)
    assert r.status == status
    assert await r.json() == body
    if status == 401:
        assert r.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'
    await assert_nothing_kept(h)


async def test_unknown_project_is_404_before_credentials(harness) -> None:
    r = await harness["client"].post("/api/v4/projects/999999/packages/pypi", data=form(wheel_bytes()))
    assert r.status == 404
    assert await r.json() == {"message": "404 Not Found"}


async def test_project_by_encoded_path(harness) -> None:
    h = harness
    r = await h["client"].post("/api/v4/projects/team%2Fapp/packages/pypi", data=form(wheel_bytes()),
                               headers=auth(h["api"]))
    assert r.status == 201, await r.text()


async def test_missing_fields(harness) -> None:
    h = harness
    data = aiohttp.FormData()
    data.add_field("name", "demo")
    data.add_field("version", "1.0")
    r = await h["client"].post(h["url"], data=data, headers=auth(h["api"]))
    assert (r.status, await r.json()) == (400, {"error": "content is missing"})
    r = await h["client"].post(h["url"], data=b"plain", headers={"Content-Type": "text/plain", **auth(h["api"])})
    assert r.status == 400
    assert (await r.json())["message"].startswith("400 Bad request - ")


async def test_size_limit_while_streaming(harness) -> None:
    h = harness
    big = wheel_bytes(payload=bytes(range(256)) * 800)  # stored, not compressed: > 100 000 bytes
    assert len(big) > h["settings"].upload_max_file_size
    r = await h["client"].post(h["url"], data=form(big), headers=auth(h["api"]))
    assert (r.status, await r.json()) == (400, {"message": "400 Bad request - File is too large"})
    await assert_nothing_kept(h)


async def test_worker_rejection_reaches_uploader(harness) -> None:
    h = harness
    h["worker"].reject_reason = "Invalid distribution file: missing .dist-info/METADATA"
    r = await h["client"].post(h["url"], data=form(wheel_bytes()), headers=auth(h["api"]))
    assert (r.status, await r.json()) == (
        400, {"message": "400 Bad request - Invalid distribution file: missing .dist-info/METADATA"})
    assert await h["mongo"].distributions.count_documents({}) == 0


async def test_no_verdict_in_time_is_202(harness) -> None:
    h = harness
    h["worker"].silent = True
    r = await h["client"].post(h["url"], data=form(wheel_bytes()), headers=auth(h["api"]))
    assert r.status == 202
    doc = await h["mongo"].distributions.find_one({})
    assert doc["state"] == "processing"


async def test_identical_reupload_and_taken_name(harness) -> None:
    h = harness
    content = wheel_bytes()
    first = await h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
    again = await h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
    assert (first.status, again.status) == (201, 201)
    other = await h["client"].post(h["url"], data=form(wheel_bytes(payload=b"y = 2\n")), headers=auth(h["api"]))
    assert (other.status, await other.json()) == (
        400, {"message": "400 Bad request - Validation failed: File name has already been taken"})
    assert await h["mongo"].distributions.count_documents({}) == 1
    assert len(await stored_objects(h)) == 1


async def test_concurrent_uploads_of_one_filename(harness) -> None:
    h = harness
    variants = [wheel_bytes(payload=f"x = {i}\n".encode()) for i in range(20)]
    responses = await asyncio.gather(*(h["client"].post(h["url"], data=form(c), headers=auth(h["api"]))
                                       for c in variants))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 1 and statuses.count(400) == 19, statuses
    assert await h["mongo"].distributions.count_documents({}) == 1
    assert len(await stored_objects(h)) == 1


async def test_concurrent_identical_uploads_all_succeed(harness) -> None:
    h = harness
    content = wheel_bytes(payload=b"same = True\n")
    responses = await asyncio.gather(*(h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
                                       for _ in range(10)))
    assert [r.status for r in responses] == [201] * 10
    assert await h["mongo"].distributions.count_documents({}) == 1
    assert len(await stored_objects(h)) == 1
