"""Bad input through the gateway: every route answers a malformed request with a clear 4xx in GitLab's
error format (never a 500 or a hang), no service logs an error for it, and what was stored before is
still served byte for byte afterwards (SPEC §7)."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from .clients import post_upload
from .packages import build_package

HUGE = "9" * 23  # past any int64 id
SHA = "a" * 64


@pytest.fixture(scope="module")
def world(registry_stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A private project in a private group, a developer's token, and one stored wheel."""
    admin = registry_stack.admin
    admin("user", "create", "--username", "fuzzer")
    group = admin("group", "create", "--path", "fuzz", "--visibility", "private")
    project = admin("project", "create", "--path", "fuzz/target", "--visibility", "private")
    admin("member", "add", "--user", "fuzzer", "--project", "fuzz/target", "--role", "maintainer")
    token = admin("token", "create", "--user", "fuzzer", "--scopes", "api")["token"]
    base = registry_stack.base_url
    wheel = next(p for p in build_package(tmp_path_factory.mktemp("fuzz"), "fuzz-kept", "1.0", value=7)
                 if p.suffix == ".whl")
    upload_url = f"{base}/api/v4/projects/{project['id']}/packages/pypi"
    response = post_upload(upload_url, token, wheel, name="fuzz-kept", version="1.0")
    assert response.status_code == 201, response.text
    # Where each service's log stands now: only what this module causes is examined afterwards.
    offsets = {log: log.stat().st_size for log in registry_stack.log_dir.glob("*.log")}
    return {"base": base, "project": project["id"], "group": group["id"], "token": token, "wheel": wheel,
            "upload_url": upload_url, "log_offsets": offsets}


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# (id, method, path under /api/v4 with {p} the project id and {g} the group id, request keywords,
#  expected status). `auth` in the keywords is replaced by the world's token.
CASES: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("project id past int64", "GET", f"/projects/{HUGE}/packages/pypi/simple/", {"auth": True}, 404),
    ("project id in other digits", "GET", "/projects/%C2%B2/packages/pypi/simple/", {"auth": True}, 404),
    ("group id past int64", "GET", f"/groups/{HUGE}/-/packages/pypi/simple/", {"auth": True}, 404),
    ("empty group path", "GET", "/groups/%2F%2F/-/packages/pypi/simple/", {"auth": True}, 404),
    ("unacceptable Accept", "GET", "/projects/{p}/packages/pypi/simple/fuzz-kept/",
     {"auth": True, "headers": {"Accept": "text/nonsense"}}, 406),
    ("unknown file", "GET", f"/projects/{{p}}/packages/pypi/files/{SHA}/x-1.0-py3-none-any.whl", {"auth": True}, 404),
    ("malformed sha256", "GET", "/projects/{p}/packages/pypi/files/zz/x-1.0-py3-none-any.whl", {"auth": True}, 404),
    ("unknown core metadata", "GET", f"/groups/{{g}}/-/packages/pypi/files/{SHA}/x-1.0-py3-none-any.whl.metadata",
     {"auth": True}, 404),
    ("Basic auth not base64", "GET", "/projects/{p}/packages/pypi/simple/",
     {"headers": {"Authorization": "Basic %%%"}}, 401),
    ("Basic auth without a colon", "GET", "/projects/{p}/packages/pypi/simple/",
     {"headers": {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}}, 401),
    ("Basic auth not UTF-8", "GET", "/projects/{p}/packages/pypi/simple/",
     {"headers": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()}}, 401),
    ("job token of no job", "GET", "/groups/{g}/-/packages/pypi/simple/", {"headers": _basic("gitlab-ci-token", "x")},
     401),
    ("upload not multipart", "POST", "/projects/{p}/packages/pypi", {"auth": True, "data": "name=x"}, 400),
    ("upload JSON", "POST", "/projects/{p}/packages/pypi", {"auth": True, "json": {"name": "x"}}, 400),
    ("upload multipart garbage", "POST", "/projects/{p}/packages/pypi",
     {"auth": True, "data": b"--x\r\nnot headers", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
     400),
    ("upload without a boundary", "POST", "/projects/{p}/packages/pypi",
     {"auth": True, "data": b"xx", "headers": {"Content-Type": "multipart/form-data"}}, 400),
    ("upload without content", "POST", "/projects/{p}/packages/pypi",
     {"auth": True, "files": {"name": (None, "x"), "version": (None, "1.0")}}, 400),
    ("upload of two files", "POST", "/projects/{p}/packages/pypi",
     {"auth": True, "files": [("name", (None, "x")), ("version", (None, "1.0")),
                              ("content", ("x-1.0.tar.gz", b"a")), ("content", ("x-1.0.tar.gz", b"b"))]}, 400),
    ("upload to a project id past int64", "POST", f"/projects/{HUGE}/packages/pypi",
     {"auth": True, "files": {"name": (None, "x"), "version": (None, "1.0"), "content": ("x-1.0.tar.gz", b"a")}},
     404),
    ("upload with PUT", "PUT", "/projects/{p}/packages/pypi", {"auth": True}, 405),
    ("packages: page -1", "GET", "/projects/{p}/packages?page=-1", {"auth": True}, 400),
    ("packages: per_page 0", "GET", "/projects/{p}/packages?per_page=0", {"auth": True}, 400),
    ("packages: id not a number", "GET", "/projects/{p}/packages/abc", {"auth": True}, 400),
    ("packages: id past int64", "GET", f"/projects/{{p}}/packages/{HUGE}", {"auth": True}, 400),
    ("packages: files of no package", "GET", "/projects/{p}/packages/424242/package_files", {"auth": True}, 404),
    ("packages: delete id not a number", "DELETE", "/projects/{p}/packages/abc", {"auth": True}, 400),
    ("packages: group of id past int64", "GET", f"/groups/{HUGE}/-/packages", {"auth": True}, 404),
]


@pytest.mark.parametrize(("case", "method", "path", "kwargs", "status"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(world: dict[str, Any], case: str, method: str, path: str,
                                    kwargs: dict[str, Any], status: int) -> None:
    kwargs = dict(kwargs)
    if kwargs.pop("auth", False):
        kwargs["auth"] = ("__token__", world["token"])
    url = world["base"] + "/api/v4" + path.format(p=world["project"], g=world["group"])
    response = requests.request(method, url, timeout=30, **kwargs)
    assert response.status_code == status, (case, response.text)
    body = response.json()
    assert isinstance(body, dict) and set(body) & {"message", "error"}, body  # GitLab's error shapes
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'


# A POST anywhere but the upload route (SPEC §4): 405 where the path is a route for other methods, 404
# elsewhere; never 2xx (a misconfigured twine must fail loudly) and never 5xx. (case, path with {p} the project
# id and {g} the group id, expected status, Allow of a 405.)
READ_ONLY = "GET,HEAD"
NON_UPLOAD_POSTS: list[tuple[str, str, int, str | None]] = [
    ("project index", "/api/v4/projects/{p}/packages/pypi/simple", 405, READ_ONLY),
    ("project index, slash", "/api/v4/projects/{p}/packages/pypi/simple/", 405, READ_ONLY),
    ("project index by path", "/api/v4/projects/fuzz%2Ftarget/packages/pypi/simple/", 405, READ_ONLY),
    ("package page", "/api/v4/projects/{p}/packages/pypi/simple/fuzz-kept", 405, READ_ONLY),
    ("package page, slash", "/api/v4/projects/{p}/packages/pypi/simple/fuzz-kept/", 405, READ_ONLY),
    ("file", f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/fuzz_kept-1.0-py3-none-any.whl", 405, READ_ONLY),
    ("core metadata", f"/api/v4/projects/{{p}}/packages/pypi/files/{SHA}/fuzz_kept-1.0-py3-none-any.whl.metadata",
     405, READ_ONLY),
    ("group index", "/api/v4/groups/{g}/-/packages/pypi/simple/", 405, READ_ONLY),
    ("group page", "/api/v4/groups/{g}/-/packages/pypi/simple/fuzz-kept", 405, READ_ONLY),
    ("group file", f"/api/v4/groups/{{g}}/-/packages/pypi/files/{SHA}/fuzz_kept-1.0-py3-none-any.whl", 405, READ_ONLY),
    ("group upload (there is none)", "/api/v4/groups/{g}/-/packages/pypi", 404, None),
    ("group upload, slash", "/api/v4/groups/{g}/-/packages/pypi/", 404, None),
    ("project packages", "/api/v4/projects/{p}/packages", 405, READ_ONLY),
    ("group packages", "/api/v4/groups/{g}/packages", 405, READ_ONLY),
    ("one package", "/api/v4/projects/{p}/packages/1", 405, "DELETE,GET,HEAD"),
    ("package files", "/api/v4/projects/{p}/packages/1/package_files", 405, READ_ONLY),
    ("one package file", "/api/v4/projects/{p}/packages/1/package_files/2", 405, "DELETE"),
    ("upload path under the index", "/api/v4/projects/{p}/packages/pypi/simple/packages/pypi", 404, None),
    ("unknown API path", "/api/v4/projects/{p}/nothing", 404, None),
    ("outside the API", "/upload", 404, None),
    ("the gateway's health", "/-/health", 405, "GET, HEAD"),
]


@pytest.mark.parametrize("auth", [True, False], ids=["with token", "anonymous"])
@pytest.mark.parametrize(("case", "path", "status", "allow"), NON_UPLOAD_POSTS, ids=[c[0] for c in NON_UPLOAD_POSTS])
def test_post_to_a_non_upload_path_is_404_or_405(world: dict[str, Any], case: str, path: str, status: int,
                                                 allow: str | None, auth: bool) -> None:
    url = world["base"] + path.format(p=world["project"], g=world["group"])
    form = {"name": (None, "fuzz-kept"), "version": (None, "1.0"),
            "content": ("fuzz_kept-1.0-py3-none-any.whl", world["wheel"].read_bytes())}  # what twine would send
    response = requests.post(url, files=form, timeout=30, auth=("__token__", world["token"]) if auth else None)
    if not path.startswith(("/api/v4/", "/-/health")):  # the web interface's: a page, not JSON
        assert response.status_code == status and "<h1>Page not found</h1>" in response.text, case
        assert response.headers.get("Allow") == allow, case
        return
    message = "405 Method Not Allowed" if status == 405 else "404 Not Found"
    assert (response.status_code, response.json()) == (status, {"message": message}), case
    assert response.headers.get("Allow") == allow, case


def test_after_bad_input_nothing_was_lost_and_nothing_failed(world: dict[str, Any]) -> None:
    """Runs after the table (file order): the stored wheel is intact and no service logged an error."""
    auth = ("__token__", world["token"])
    page = requests.get(f"{world['upload_url']}/simple/fuzz-kept/", auth=auth, timeout=30,
                        headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200
    (entry,) = page.json()["files"]
    wheel: Path = world["wheel"]
    assert entry["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    download = requests.get(entry["url"], auth=auth, timeout=30)
    assert download.status_code == 200 and download.content == wheel.read_bytes()
    errors, examined = [], 0
    for log, offset in world["log_offsets"].items():
        with log.open("rb") as handle:
            handle.seek(offset)
            for line in handle.read().decode(errors="replace").splitlines():
                if line.startswith("{"):
                    examined += 1
                    if json.loads(line).get("level") in ("error", "critical"):
                        errors.append(f"{log.name}: {line[:300]}")
    assert examined >= len(CASES)  # the table's requests were logged (one line each at least)
    assert errors == []
