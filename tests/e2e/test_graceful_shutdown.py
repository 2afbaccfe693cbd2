"""SIGTERM with work in flight (DESIGN.md "Scaling and deployment"): the process stops taking new
connections, finishes the request in hand, then exits. A stack of its own: these tests kill its processes."""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import signal
import socket
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.servers import BackingServices, RegistryStack, wait_until

pytestmark = pytest.mark.stack

PAYLOAD_BYTES = 24 * 1024 * 1024  # large enough that the download is still streaming when SIGTERM lands


@pytest.fixture(scope="module")
def stack(backing_services: BackingServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryStack]:
    stack = RegistryStack(tmp_path_factory.mktemp("shutdown") / "var", backing_services, name="shutdown")
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture(scope="module")
def tenant(stack: RegistryStack) -> dict:
    stack.admin("user", "create", "--username", "stopper")
    stack.admin("group", "create", "--path", "stoppers", "--visibility", "private")
    project = stack.admin("project", "create", "--path", "stoppers/demo", "--visibility", "private")
    stack.admin("member", "add", "--user", "stopper", "--project", "stoppers/demo", "--role", "developer")
    token = stack.admin("token", "create", "--user", "stopper", "--scopes", "api")["token"]
    # Stored before any test stops a process: the download test's file.
    filename, data = big_wheel("2.0")
    form = {":action": "file_upload", "protocol_version": "1", "name": "stop-demo", "version": "2.0",
            "filetype": "bdist_wheel"}
    created = requests.post(f"{stack.base_url}/api/v4/projects/{project['id']}/packages/pypi", data=form,
                            files={"content": (filename, data, "application/octet-stream")},
                            auth=("__token__", token), timeout=120)
    assert created.status_code == 201, created.text
    return {"project_id": project["id"], "token": token, "stored": (filename, data)}


def big_wheel(version: str) -> tuple[str, bytes]:
    """A valid wheel with an incompressible payload, written directly (a build backend would take long)."""
    name, dist_info = "stop-demo", f"stop_demo-{version}.dist-info"
    payload = os.urandom(PAYLOAD_BYTES)
    files = {
        "stop_demo/__init__.py": b"VALUE = 1\n",
        "stop_demo/blob.bin": payload,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return f"stop_demo-{version}-py3-none-any.whl", buffer.getvalue()


def multipart(filename: str, data: bytes, version: str) -> tuple[str, bytes, bytes]:
    """(content type, everything before the file's bytes and the file, the closing part)."""
    boundary = uuid.uuid4().hex
    fields = {":action": "file_upload", "protocol_version": "1", "name": "stop-demo", "version": version,
              "filetype": "bdist_wheel", "sha256_digest": hashlib.sha256(data).hexdigest()}
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
                    for key, value in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    return f"multipart/form-data; boundary={boundary}", head + data, f"\r\n--{boundary}--\r\n".encode()


def in_progress(url: str, service: str) -> float:
    """The service's `registry_http_requests_in_progress` gauge (0 when it cannot be read)."""
    try:
        text = requests.get(f"{url}/metrics", timeout=5).text
    except requests.RequestException:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f'registry_http_requests_in_progress{{service="{service}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
        return False
    except OSError:
        return True


def exited(pid: int) -> bool:
    """Gone, or a zombie (stack.py's processes are orphans; whoever adopts them may reap late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_upload_in_flight_completes_after_sigterm(stack: RegistryStack, tenant: dict) -> None:
    filename, data = big_wheel("1.0")
    content_type, body, closing = multipart(filename, data, "1.0")
    upload_url = stack.service_urls["upload-api"]
    parts = urlsplit(upload_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    connection.putrequest("POST", f"/api/v4/projects/{tenant['project_id']}/packages/pypi")
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body) + len(closing)))
    auth = requests.auth._basic_auth_str("__token__", tenant["token"])
    connection.putheader("Authorization", auth)
    connection.endheaders()
    connection.send(body[: len(body) // 2])
    wait_until(lambda: in_progress(upload_url, "upload-api") >= 1, 30, "upload-api handling the upload")

    pid = stack.pids()["upload-api"]
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: refuses_connections(upload_url), 20, "upload-api refusing new connections")
    connection.send(body[len(body) // 2:])
    connection.send(closing)
    response = connection.getresponse()
    assert response.status == 201, response.read()
    wait_until(lambda: exited(pid), 30, "upload-api exiting after the upload it had in hand")

    # What it accepted is stored and served: the index lists it, the bytes come back whole.
    index = stack.service_urls["index-api-1"]
    page = requests.get(f"{index}/api/v4/projects/{tenant['project_id']}/packages/pypi/simple/stop-demo/",
                        auth=("__token__", tenant["token"]), timeout=30)
    assert page.status_code == 200 and filename in page.text


def test_download_in_flight_completes_after_sigterm(stack: RegistryStack, tenant: dict) -> None:
    filename, data = tenant["stored"]
    replica = stack.service_urls["index-api-2"]
    sha256 = hashlib.sha256(data).hexdigest()
    url = f"{replica}/api/v4/projects/{tenant['project_id']}/packages/pypi/files/{sha256}/{filename}"
    response = requests.get(url, auth=("__token__", tenant["token"]), stream=True, timeout=60)
    assert response.status_code == 200
    chunks = response.iter_content(64 * 1024)
    received = io.BytesIO()
    received.write(next(chunks))
    assert in_progress(replica, "index-api") >= 1  # the handler is still streaming: the request is in flight

    pid = stack.pids()["index-api-2"]
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: refuses_connections(replica), 20, "index-api-2 refusing new connections")
    for chunk in chunks:
        received.write(chunk)
    assert received.getbuffer().nbytes == len(data)
    assert hashlib.sha256(received.getvalue()).hexdigest() == sha256
    wait_until(lambda: exited(pid), 30, "index-api-2 exiting after the download it had in hand")


def test_sigterm_with_nothing_in_flight_exits_promptly(stack: RegistryStack) -> None:
    pid = stack.pids()["proxy"]
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: exited(pid), 10, "proxy exiting at once when idle")
