"""Large downloads through the gateway without Python in the byte path (send-file, as GitLab Workhorse's
send-url): index-api decides (credentials, scope, the file, 304, 416) and answers X-Accel-Redirect; the
gateway streams the object from S3 with the file's headers and none of S3's.

Files of at least INDEX_SEND_FILE_MIN_SIZE (1 MiB by default) take that path; the wheel here is 3 MiB.
"""
from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from minio import Minio
from pymongo import MongoClient

from tests.support.servers import wait_until

from .test_read_path import make_wheel

SIZE = 3 * 1024 * 1024
# Every header a file download may carry; anything else (x-amz-*, S3's Server, SeaweedFS's own) leaked.
FILE_HEADERS = {"server", "date", "content-type", "content-length", "connection", "keep-alive", "etag",
                "cache-control", "content-disposition", "accept-ranges", "content-range", "x-request-id"}


@dataclass
class Shared:
    base: str
    project_id: int
    group_id: int
    token: str
    other_token: str
    filename: str
    data: bytes
    object_key: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def url(self, base: str | None = None, scope: str = "project") -> str:
        root = (f"/api/v4/projects/{self.project_id}/packages/pypi" if scope == "project"
                else f"/api/v4/groups/{self.group_id}/-/packages/pypi")
        return f"{base or self.base}{root}/files/{self.sha256}/{self.filename}"


def upload(base: str, project_id: int, token: str, path: Path) -> None:
    data = path.read_bytes()
    form = {"name": "sf-big", "version": "1.0.0", "filetype": "bdist_wheel", ":action": "file_upload",
            "protocol_version": "1", "sha256_digest": hashlib.sha256(data).hexdigest()}
    response = requests.post(f"{base}/api/v4/projects/{project_id}/packages/pypi", data=form,
                             files={"content": (path.name, data, "application/octet-stream")},
                             auth=("__token__", token), timeout=120)
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def shared(registry_stack, tmp_path_factory) -> Shared:
    """sendfile (private group) > sendfile/lib (private) with one 3 MiB wheel; a reader and a stranger."""
    admin = registry_stack.admin
    admin("user", "create", "--username", "sf-reader")
    admin("user", "create", "--username", "sf-stranger")
    group = admin("group", "create", "--path", "sendfile", "--visibility", "private")
    lib = admin("project", "create", "--path", "sendfile/lib", "--visibility", "private")
    admin("member", "add", "--user", "sf-reader", "--group", "sendfile", "--role", "developer")
    token = admin("token", "create", "--user", "sf-reader", "--scopes", "api")["token"]
    other = admin("token", "create", "--user", "sf-stranger", "--scopes", "api")["token"]
    wheel = make_wheel(tmp_path_factory.mktemp("send-file"), "sf-big", "1.0.0", payload=os.urandom(SIZE))
    upload(registry_stack.base_url, lib["id"], token, wheel)
    db = MongoClient(registry_stack.env["MONGODB_URL"]).get_default_database()
    doc = db.distributions.find_one({"project_id": lib["id"], "filename": wheel.name})
    assert doc is not None
    return Shared(registry_stack.base_url, lib["id"], group["id"], token, other, wheel.name, wheel.read_bytes(),
                  doc["object_key"])


def get(url: str, token: str | None, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, auth=("__token__", token) if token else None, timeout=60)


def records(registry_stack, name: str, correlation_id: str) -> list[dict[str, Any]]:
    return [r for r in registry_stack.read_logs(name) if r.get("correlation_id") == correlation_id]


def trace(registry_stack, correlation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the gateway's access-log line, index-api's request line) of one request."""
    def found() -> tuple[dict[str, Any], dict[str, Any]] | None:
        gateway = records(registry_stack, "nginx", correlation_id)
        index = [r for name in ("index-api-1", "index-api-2") for r in records(registry_stack, name, correlation_id)
                 if r.get("event") == "http_request"]
        return (gateway[0], index[0]) if gateway and index else None
    return wait_until(found, 10, f"log lines of request {correlation_id}")


def s3_address(registry_stack) -> str:
    return urlsplit(registry_stack.env["S3_ENDPOINT"]).netloc


def test_the_gateway_sends_a_large_file_from_s3(registry_stack, shared: Shared) -> None:
    correlation_id = uuid.uuid4().hex
    response = get(shared.url(), shared.token, **{"X-Request-Id": correlation_id})
    assert response.status_code == 200 and response.content == shared.data
    headers = response.headers
    assert int(headers["Content-Length"]) == len(shared.data)
    assert headers["ETag"] == f'"{shared.sha256}"'
    assert headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert headers["Content-Disposition"] == f'attachment; filename="{shared.filename}"'
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Accept-Ranges"] == "bytes" and headers["X-Request-Id"] == correlation_id
    assert {k.lower() for k in headers} <= FILE_HEADERS, headers

    gateway, index = trace(registry_stack, correlation_id)
    # index-api answered the redirect; the bytes came from S3 through nginx alone (the first download of
    # the object: a miss of the gateway's cache, fetched in slices, the first one by this request).
    assert index["status"] == 200 and index["sent_by"] == "gateway"
    assert gateway["path"] == urlsplit(shared.url()).path and gateway["status"] == 200
    assert gateway["upstream_status"] == "200 : 206" and gateway["cache"] == "MISS"
    assert gateway["upstream"].split(" : ")[1] == s3_address(registry_stack)
    assert gateway["bytes_sent"] >= len(shared.data)


def download_traced(registry_stack, url: str, token: str | None, **headers: str) -> tuple[requests.Response,
                                                                                          dict[str, Any]]:
    correlation_id = uuid.uuid4().hex
    response = get(url, token, **{"X-Request-Id": correlation_id, **headers})
    return response, trace(registry_stack, correlation_id)[0]


def test_a_downloaded_object_comes_from_the_gateway_cache(registry_stack, shared: Shared) -> None:
    """index-api still decides each download; the bytes come from the gateway's disk, not from S3."""
    download_traced(registry_stack, shared.url(), shared.token)  # cached now, whatever ran before
    for scope in ("project", "group"):  # one object, one cache entry, whichever URL leads to it
        response, gateway = download_traced(registry_stack, shared.url(scope=scope), shared.token)
        assert response.status_code == 200 and response.content == shared.data
        assert response.headers["ETag"] == f'"{shared.sha256}"'
        assert int(response.headers["Content-Length"]) == len(shared.data)
        assert {k.lower() for k in response.headers} <= FILE_HEADERS, response.headers
        assert gateway["cache"] == "HIT" and gateway["status"] == 200
        assert s3_address(registry_stack) not in gateway["upstream"]  # only index-api was asked


def test_a_range_is_cut_from_the_cache(registry_stack, shared: Shared) -> None:
    download_traced(registry_stack, shared.url(), shared.token)
    size, data = len(shared.data), shared.data
    # Across a slice boundary (1 MiB), a suffix, and an open range.
    for header, start, end in (("bytes=1048570-1048590", 1048570, 1048590), ("bytes=-7", size - 7, size - 1),
                               (f"bytes={2 * 1048576 + 3}-", 2 * 1048576 + 3, size - 1)):
        response, gateway = download_traced(registry_stack, shared.url(), shared.token, Range=header)
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        assert int(response.headers["Content-Length"]) == end - start + 1
        assert response.content == data[start:end + 1], header
        assert gateway["cache"] == "HIT" and s3_address(registry_stack) not in gateway["upstream"], header
    # Several ranges: the whole file, as index-api answers them.
    response, gateway = download_traced(registry_stack, shared.url(), shared.token, Range="bytes=0-1,5-6")
    assert response.status_code == 200 and response.content == data


@pytest.mark.parametrize(("caller", "status"), [("anonymous", 401), ("stranger", 404)])
def test_a_cached_object_is_still_refused_to_who_may_not_read_it(registry_stack, shared: Shared, caller: str,
                                                                 status: int) -> None:
    """The cache sits behind index-api's decision: that the gateway holds the bytes changes nothing."""
    _response, gateway = download_traced(registry_stack, shared.url(), shared.token)
    assert gateway["cache"] == "HIT"  # the object is in the cache
    token = shared.other_token if caller == "stranger" else None
    for scope in ("project", "group"):
        response, gateway = download_traced(registry_stack, shared.url(scope=scope), token)
        assert response.status_code == status and shared.data[:1000] not in response.content
        assert response.json()["message"].startswith(str(status))
        assert gateway["cache"] == "" and " : " not in gateway["upstream"]  # never reached the cache


def header_lines(url: str, method: str, headers: dict[str, str]) -> list[str]:
    """The names of the response's header lines as sent, repeats included (one request, read to EOF)."""
    parts = urlsplit(url)
    request = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
               *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall("\r\n".join(request).encode())
        received = b""
        while (chunk := sock.recv(65536)) and b"\r\n\r\n" not in received:
            received += chunk
    head = received.partition(b"\r\n\r\n")[0].decode("latin-1")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n")[1:]]


@pytest.mark.parametrize("extra", [{}, {"Range": "bytes=5-9"}], ids=["200", "206"])
def test_each_header_is_sent_once(shared: Shared, extra: dict[str, str]) -> None:
    """nginx keeps some of index-api's headers across the redirect: none may come twice."""
    auth = requests.Request("GET", shared.url(), auth=("__token__", shared.token)).prepare().headers["Authorization"]
    names = header_lines(shared.url(), "GET", {"Authorization": auth, **extra})
    assert len(names) == len(set(names)) and set(names) <= FILE_HEADERS, names


@pytest.mark.parametrize("scope", ["project", "group"])
def test_ranges_are_206_and_past_the_end_416(shared: Shared, scope: str) -> None:
    url, size, data = shared.url(scope=scope), len(shared.data), shared.data
    cases = (("bytes=0-99", 0, 99), ("bytes=-50", size - 50, size - 1),
             (f"bytes={size - 10}-{size + 500}", size - 10, size - 1), ("bytes=1048576-", 1048576, size - 1))
    for header, start, end in cases:
        response = get(url, shared.token, Range=header)
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        assert int(response.headers["Content-Length"]) == end - start + 1, header
        assert response.content == data[start:end + 1], header
        assert response.headers["ETag"] == f'"{shared.sha256}"'
    beyond = get(url, shared.token, Range=f"bytes={size}-")
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    assert get(url, shared.token, Range="bytes=0-9", **{"If-Range": f'"{shared.sha256}"'}).status_code == 206
    stale = get(url, shared.token, Range="bytes=0-9", **{"If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.content == data


def test_304_and_head_never_reach_s3(registry_stack, shared: Shared) -> None:
    correlation_id = uuid.uuid4().hex
    conditional = {"If-None-Match": f'"{shared.sha256}"', "X-Request-Id": correlation_id}
    response = get(shared.url(), shared.token, **conditional)
    assert response.status_code == 304 and response.content == b""
    assert response.headers["ETag"] == f'"{shared.sha256}"'
    gateway, index = trace(registry_stack, correlation_id)
    assert " : " not in gateway["upstream"] and "sent_by" not in index

    correlation_id = uuid.uuid4().hex
    head = requests.head(shared.url(), auth=("__token__", shared.token), headers={"X-Request-Id": correlation_id},
                         timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(shared.data)
    gateway, _index = trace(registry_stack, correlation_id)
    assert " : " not in gateway["upstream"]


@pytest.mark.parametrize("scope", ["project", "group"])
@pytest.mark.parametrize(("caller", "status"), [("anonymous", 401), ("stranger", 404)])
def test_a_private_file_is_still_refused(shared: Shared, scope: str, caller: str, status: int) -> None:
    token = shared.other_token if caller == "stranger" else None
    response = get(shared.url(scope=scope), token)
    assert response.status_code == status and shared.data[:1000] not in response.content
    assert response.json()["message"].startswith(str(status))


def test_client_headers_cannot_make_the_gateway_send_an_object(registry_stack, shared: Shared) -> None:
    """The send-file headers count only in index-api's answer: sent by a client they do nothing."""
    bucket = registry_stack.env["S3_BUCKET"]
    forged = {"X-Sendfile-Type": "X-Accel-Redirect", "X-Accel-Redirect": "/-/send-object",
              "X-Object-Url": f"/{bucket}/{shared.object_key}", "X-Object-Host": s3_address(registry_stack)}
    refused = get(shared.url(), None, **forged)
    assert refused.status_code == 401 and shared.data[:1000] not in refused.content
    for path in ("/-/send-object", f"/-/send-object/{bucket}/{shared.object_key}", "/-/send-object-missing"):
        direct = get(f"{shared.base}{path}", shared.token, **forged)
        # The gateway's 404, or the web interface's page for paths outside its own locations: never the object.
        assert direct.status_code == 404 and shared.data[:1000] not in direct.content, path
        assert "X-Accel-Redirect" not in direct.headers, path
    # A request to a small-file route still carries the gateway's own X-Sendfile-Type, not the client's.
    unknown = get(f"{shared.base}/api/v4/projects/{shared.project_id}/packages/pypi/files/{'0' * 64}/x.whl",
                  shared.token, **forged)
    assert unknown.status_code == 404 and "X-Accel-Redirect" not in unknown.headers


def test_index_api_reached_directly_streams_the_bytes_itself(registry_stack, shared: Shared) -> None:
    """No gateway, no send-file: a client that sends X-Sendfile-Type to index-api itself gets the
    redirect headers, which it cannot follow, only for a file it may read anyway."""
    for replica in registry_stack.index_replica_urls:
        response = get(shared.url(base=replica), shared.token)
        assert response.status_code == 200 and response.content == shared.data
        assert "X-Accel-Redirect" not in response.headers


def test_a_missing_object_is_404_not_s3_s_error(registry_stack, tmp_path: Path) -> None:
    """The file's document says it exists, S3 no longer has it: the client gets our 404, not S3's XML."""
    admin = registry_stack.admin
    project = admin("project", "create", "--path", "sendfile/gone", "--visibility", "public")
    admin("user", "create", "--username", "sf-gone")
    admin("member", "add", "--user", "sf-gone", "--project", "sendfile/gone", "--role", "developer")
    token = admin("token", "create", "--user", "sf-gone", "--scopes", "api")["token"]
    wheel = make_wheel(tmp_path, "sf-big", "1.0.0", payload=os.urandom(2 * 1024 * 1024))
    upload(registry_stack.base_url, project["id"], token, wheel)
    db = MongoClient(registry_stack.env["MONGODB_URL"]).get_default_database()
    key = db.distributions.find_one({"project_id": project["id"]})["object_key"]
    env = registry_stack.env
    Minio(s3_address(registry_stack), access_key=env["S3_ACCESS_KEY"], secret_key=env["S3_SECRET_KEY"],
          secure=False).remove_object(env["S3_BUCKET"], key)
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    root = f"{registry_stack.base_url}/api/v4/projects/{project['id']}/packages/pypi"
    response = get(f"{root}/files/{sha256}/{wheel.name}", None)
    assert response.status_code == 404
    assert response.json() == {"message": "404 Package Not Found"}
    assert {k.lower() for k in response.headers} <= FILE_HEADERS | {"content-type"}, response.headers
