"""No upload is ever stuck or lost (issue 12): what the client sees when its body, or a dependency, fails
part-way, and that nothing left behind blocks the retry. Real servers throughout; a dependency is stopped
at the step under test, and malformed bodies are written byte by byte on a raw socket.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.domain.access import RegistryAccess, Role, Visibility
from tests.support.fake_worker import FakeWorker
from tests.support.servers import RestartableMongo
from upload_api.app import create_app
from upload_api.settings import UploadSettings
from upload_api.views import UPLOAD_SERVICE

from .test_upload_api import assert_nothing_kept, auth, form, harness, wheel_bytes

__all__ = ["harness"]  # the fixture, shared with test_upload_api

TRUNCATED = "malformed multipart body: it ends before the file part's closing boundary (truncated upload?)"


def raw_request(port: int, path: str, body: bytes, token: str, content_length: int | None = None,
                close_after_send: bool = False) -> bytes:
    """POST `body` as written (no client library to complete it) and return the raw response, or b"" when
    the connection was closed before any answer."""
    basic = base64.b64encode(f"__token__:{token}".encode()).decode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n"
            f"Content-Type: multipart/form-data; boundary=BOUNDARY\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        if close_after_send:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
        return b"".join(chunks)


def multipart(content: bytes, closing: bool = True) -> bytes:
    fields = {"name": "demo", "version": "1.0", "sha256_digest": hashlib.sha256(content).hexdigest()}
    body = b"".join(f'--BOUNDARY\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (b'--BOUNDARY\r\nContent-Disposition: form-data; name="content"; filename="demo-1.0-py3-none-any.whl"'
             b"\r\nContent-Type: application/octet-stream\r\n\r\n") + content
    return body + (b"\r\n--BOUNDARY--\r\n" if closing else b"")


def status_line(response: bytes) -> str:
    return response.split(b"\r\n", 1)[0].decode()


# -- parameters come before credentials --------------------------------------------------------

@pytest.mark.parametrize(("fields", "error"), [
    ({"sha256": "not-a-digest"}, "sha256_digest is invalid"),
    ({"sha256": "a" * 63}, "sha256_digest is invalid"),
    ({"version": ""}, "version is missing"),
])
async def test_malformed_parameters_are_400_before_credentials(harness: dict, fields: dict, error: str) -> None:
    """GitLab validates parameters first: an anonymous upload with a malformed digest is a 400, not a 401."""
    h = harness
    response = await h["client"].post(h["url"], data=form(wheel_bytes(), **fields))
    assert (response.status, await response.json()) == (400, {"error": error})
    assert response.reason == error
    await assert_nothing_kept(h)


# -- bodies that end early ----------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing closing boundary", "short Content-Length"])
async def test_a_body_that_ends_early_is_the_client_s_400(harness: dict, case: str) -> None:
    h = harness
    content = wheel_bytes(payload=b"y" * 30_000)
    if case == "missing closing boundary":
        body = multipart(content, closing=False)
        length = len(body)
    else:  # the declared length (and what was sent) stops inside the file part
        body = multipart(content)[: -len(content) // 2]
        length = len(body)
    port = h["client"].server.port
    with structlog.testing.capture_logs() as logs:
        response = await asyncio.to_thread(raw_request, port, h["url"], body, h["api"], length)
    assert status_line(response) == f"HTTP/1.1 400 {TRUNCATED}"
    assert response.endswith(f'{{"message": "400 Bad request - {TRUNCATED}"}}'.encode())
    assert not [e for e in logs if e["log_level"] == "error"]
    await assert_nothing_kept(h)


@pytest.mark.parametrize("case", ["a second file part", "a cut closing boundary", "a flipped closing boundary"])
async def test_a_malformed_end_after_the_file_keeps_nothing(harness: dict, case: str) -> None:
    """The file part was fine, the rest of the body is not: the upload is refused and nothing of it kept, not
    stored and indexed while the client hears 400 (the fault run found both)."""
    h = harness
    content = wheel_bytes()
    body = multipart(content, closing=False)
    if case == "a second file part":
        body += (b'\r\n--BOUNDARY\r\nContent-Disposition: form-data; name="content"; filename="x.whl"\r\n\r\n'
                 b"again\r\n--BOUNDARY--\r\n")
        reason = "only one file may be uploaded per request"
    elif case == "a cut closing boundary":
        body += b"\r\n--BOUNDARY--\r\n"[:-3]
        reason = "malformed multipart body"
    else:
        body += b"\r\n--BOUNDARX--\r\n"
        reason = TRUNCATED
    response = await asyncio.to_thread(raw_request, h["client"].server.port, h["url"], body, h["api"])
    assert status_line(response) == f"HTTP/1.1 400 {reason}"
    assert h["worker"].seen == []  # never published
    await assert_nothing_kept(h)
    retry = await h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
    assert retry.status == 201, await retry.text()


async def test_a_client_that_goes_away_mid_upload_is_routine(harness: dict) -> None:
    """A cancelled twine: logged at info, no traceback, nothing kept, and the name free for the retry.
    Served as in production (aiohttp's test server cancels the handler of a lost connection instead)."""
    h = harness
    content = wheel_bytes(payload=b"z" * 60_000)
    body = multipart(content)
    runner = web.AppRunner(create_app(h["settings"]))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    try:
        with structlog.testing.capture_logs() as logs:
            await asyncio.to_thread(raw_request, port, h["url"], body[: len(body) // 2], h["api"], len(body), True)
            await wait_for(lambda: any(e["event"] == "http_request" for e in logs), "the request's log line")
    finally:
        await runner.cleanup()
    assert [e["event"] for e in logs if e["event"] == "upload_client_disconnected"] == [
        "upload_client_disconnected"]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    await assert_nothing_kept(h)
    response = await h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
    assert response.status == 201, await response.text()


async def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll `check` (a condition, not a fixed wait) for up to 20 s."""
    try:
        async with asyncio.timeout(20):
            while not check():  # noqa: ASYNC110 - a log line is the condition; nothing to await on
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# -- reservations whose holder is gone ----------------------------------------------------------

async def test_a_reservation_abandoned_by_a_crashed_upload_is_reclaimed(harness: dict) -> None:
    """An `uploading` reservation whose lease ran out (its upload-api died mid-stream) does not block the
    name: the next upload takes it over at once."""
    h = harness
    content = wheel_bytes()
    filename = "demo-1.0-py3-none-any.whl"
    past = datetime.now(UTC) - timedelta(seconds=5)
    await h["mongo"].distributions.insert_one({
        "_id": 10_000, "project_id": h["project"]["_id"], "filename": filename, "upload_id": "crashed",
        "object_key": f"files/{h['project']['_id']}/crashed/{filename}", "state": "uploading",
        "created_at": past - timedelta(minutes=1), "lease_until": past})
    with structlog.testing.capture_logs() as logs:
        response = await h["client"].post(h["url"], data=form(content), headers=auth(h["api"]))
    assert response.status == 201, await response.text()
    assert [e["abandoned_upload"] for e in logs if e["event"] == "reservation_reclaimed"] == ["crashed"]
    [doc] = [d async for d in h["mongo"].distributions.find({})]
    assert doc["state"] == "installable" and doc["upload_id"] != "crashed"


async def test_a_reservation_still_leased_is_not_taken(harness: dict) -> None:
    """A live holder (its lease in the future) keeps the name: a different file under it is refused."""
    h = harness
    filename = "demo-1.0-py3-none-any.whl"
    now = datetime.now(UTC)
    await h["mongo"].distributions.insert_one({
        "_id": 10_001, "project_id": h["project"]["_id"], "filename": filename, "upload_id": "alive",
        "object_key": "x", "state": "uploading", "sha256": "0" * 64, "created_at": now,
        "lease_until": now + timedelta(minutes=5)})
    response = await h["client"].post(h["url"], data=form(wheel_bytes()), headers=auth(h["api"]))
    assert (response.status, await response.json()) == (
        400, {"message": "400 Bad request - Validation failed: File name has already been taken"})
    assert response.reason == "Validation failed: File name has already been taken"
    assert (await h["mongo"].distributions.find_one({"_id": 10_001}))["upload_id"] == "alive"


# -- MongoDB stopped right after the object is stored ----------------------------------------------

async def test_mongodb_failing_after_the_object_is_stored_leaves_nothing_that_blocks_the_retry(
        service_env: dict[str, str], restartable_mongo: RestartableMongo) -> None:
    """MongoDB stops once the file is reserved and stored, as it is published: the worker cannot index it, the
    upload stops waiting and cannot mark it stored either (202, logged), and once MongoDB is back the retry
    succeeds (the reservation, no longer renewed, is reclaimed once its lease runs out)."""
    env = {**service_env, "MONGODB_URL": f"{restartable_mongo.url}/faults"}
    settings = UploadSettings(**{k.lower(): v for k, v in env.items()}, upload_max_file_size=100_000,
                              upload_verdict_timeout=1, upload_reservation_lease=1)
    mongo = Mongo.connect(settings.mongodb_url, settings.mongodb_database)
    await mongo.ensure_indexes()
    tenancy, packages = TenancyRepository(mongo), PackageRepository(mongo)
    broker = Broker(settings.amqp_url, settings.amqp_exchange)
    await broker.connect()
    await FakeWorker(broker, packages, settings.amqp_exchange).start()
    dev = await tenancy.create_user("dev")
    await tenancy.create_group("team", None, Visibility.PRIVATE)
    project = await tenancy.create_project("team/app", None, Visibility.PRIVATE, RegistryAccess.ENABLED)
    await tenancy.add_member(dev["_id"], "project", project["_id"], Role.DEVELOPER)
    _, token = await tenancy.create_personal_token(dev["_id"], ["api"], None)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    url = f"/api/v4/projects/{project['_id']}/packages/pypi"
    try:
        service = client.server.app[UPLOAD_SERVICE]
        publish = service.publisher.publish

        async def stop_mongodb_then_publish(*args: Any, **kwargs: Any) -> None:
            await asyncio.to_thread(restartable_mongo.stop)
            await publish(*args, **kwargs)

        service.publisher.publish = stop_mongodb_then_publish  # type: ignore[method-assign]
        content = wheel_bytes()
        with structlog.testing.capture_logs() as logs:
            response = await client.post(url, data=form(content), headers=auth(token))
        assert (response.status, await response.json()) == (
            202, {"message": "202 Accepted - the file is being processed and appears shortly"})
        assert [e["event"] for e in logs if e["event"] in ("verdict_timeout", "mark_stored_failed")] == [
            "verdict_timeout", "mark_stored_failed"]

        service.publisher.publish = publish  # type: ignore[method-assign]
        await asyncio.to_thread(restartable_mongo.start)
        [left] = [d async for d in mongo.distributions.find({})]
        assert left["state"] == "uploading"  # not marked stored: reclaimable once its lease runs out
        response = await client.post(url, data=form(content), headers=auth(token))
        assert (response.status, await response.json()) == (201, {"message": "201 Created"})
        [doc] = [d async for d in mongo.distributions.find({})]
        assert doc["state"] == "installable" and doc["upload_id"] != left["upload_id"]
    finally:
        await client.close()
        await broker.close()
        await mongo.close()

