"""SPEC §2-§3.1 as one table: visibility x caller x route -> status, for project and group routes (E1-E3m,
E7-E9m), the Packages API reads (E10-E12) and uploads.

The expected statuses come from `expected()`, written from the SPEC's words, not from the code under test:
both index-api and upload-api run for real (aiohttp test servers) against real MongoDB-wire, S3 and
RabbitMQ servers; the metadata-worker is stood in for by tests.support.fake_worker.
"""
from __future__ import annotations

import base64
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from index_api.app import create_app as create_index_app
from index_api.settings import IndexSettings
from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.domain.access import Role
from registry_shared.records.packages import PackageRecord
from tests.integration.index_api.index_support import Seeder
from tests.support.fake_worker import FakeWorker
from tests.support.servers import settings_from_env
from upload_api.app import create_app as create_upload_app
from upload_api.settings import UploadSettings

REALM = 'Basic realm="GitLab Packages Registry"'
ROLES = {"non-member": None, "guest": Role.GUEST, "reporter": Role.REPORTER, "developer": Role.DEVELOPER,
         "maintainer": Role.MAINTAINER}


@dataclass(frozen=True)
class Caller:
    label: str
    kind: str  # anonymous | user | deploy | job
    role: Role | None = None
    scope: str = ""  # api | read_api | read_package_registry | write_package_registry
    job: str = ""  # own | allowed | denied
    home: str = "project"  # deploy tokens: project | group (this one) | other project | other group


CALLERS = [
    Caller("anonymous", "anonymous"),
    Caller("wrong password", "anonymous"),
    *(Caller(f"{name} PAT {scope}", "user", role, scope) for scope in ("api", "read_api")
      for name, role in ROLES.items()),
    Caller("deploy token read", "deploy", scope="read_package_registry"),
    Caller("deploy token write", "deploy", scope="write_package_registry"),
    Caller("group deploy token read", "deploy", scope="read_package_registry", home="group"),
    Caller("deploy token of another project, read", "deploy", scope="read_package_registry", home="other project"),
    Caller("deploy token of another project, write", "deploy", scope="write_package_registry",
           home="other project"),
    Caller("deploy token of another group", "deploy", scope="read_package_registry", home="other group"),
    Caller("job token of the project", "job", job="own"),
    Caller("job token of another project, allowed", "job", job="allowed"),
    Caller("job token of another project, not allowed", "job", job="denied"),
]


def expected(visibility: str, c: Caller) -> dict[str, int]:
    """What SPEC §3.1 says each route answers. The project sits in a group of the same visibility; the
    job's user is a developer of the job's own project and of nothing else; forwarding is off."""
    open_to_signed_in = visibility in ("public", "internal")
    # A deploy token of another project or group counts as anyone (SPEC §3.1): not a signed-in user.
    like_anyone = c.kind == "anonymous" or (c.kind == "deploy" and c.home.startswith("other"))
    if like_anyone:
        reads, sees = visibility == "public", visibility == "public"
    elif c.kind == "user":
        reads = open_to_signed_in or (c.role is not None and c.role >= Role.REPORTER)
        sees = open_to_signed_in or c.role is not None
    elif c.kind == "deploy":
        reads = sees = True  # a deploy token of this very project or its group, either scope
    elif c.job == "own":
        reads = sees = True
    elif c.job == "allowed":
        reads = sees = open_to_signed_in  # the job's user is no member here
    else:  # a job token used where its project is not allowed
        reads, sees = False, visibility == "public"

    def denied(seen: bool) -> int:
        return 403 if seen else 401 if c.kind == "anonymous" else 404

    read = 200 if reads else denied(sees)
    statuses = {route: read for route in ("project index", "project page", "project file", "project metadata",
                                          "project packages", "package", "package files")}

    own_deploy = c.kind == "deploy" and not like_anyone
    can_upload = (c.kind == "user" and c.scope == "api" and c.role is not None and c.role >= Role.DEVELOPER) or \
        (own_deploy and c.scope == "write_package_registry") or (c.kind == "job" and c.job != "denied")
    if c.kind == "anonymous":
        statuses["upload"] = 401
    elif not sees:
        statuses["upload"] = 404
    else:
        statuses["upload"] = 201 if can_upload else 403

    # Group routes: a caller who may read the project reads it through the group. Otherwise the group's
    # own rules apply (nobody here is a member of the group): its index is readable but empty, and the
    # package and file are not found in it.
    group_routes = ("group index", "group page", "group file", "group metadata", "group packages")
    if reads:
        statuses.update(dict.fromkeys(group_routes, 200))
    else:
        # (A deploy token of the project or its group reads that project, so it never reaches this branch.)
        group_reads = (like_anyone and visibility == "public") or \
            (c.kind in ("user", "job") and open_to_signed_in)
        group_sees = visibility == "public" or (c.kind in ("user", "job") and open_to_signed_in)
        if group_reads:
            statuses.update({"group index": 200, "group page": 404, "group file": 404, "group metadata": 404,
                             "group packages": 200})
        else:
            statuses.update(dict.fromkeys(group_routes, denied(group_sees)))
    return statuses


def wheel(name: str, version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", f"{name}-{version}.dist-info/METADATA,,\n"
                                                          f"{name}-{version}.dist-info/RECORD,,\n")
    return buf.getvalue()


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
async def world(service_env) -> AsyncIterator[dict]:
    index_settings = settings_from_env(IndexSettings, service_env)
    upload_settings = settings_from_env(UploadSettings, service_env)
    mongo = Mongo.connect(index_settings.mongodb_url, index_settings.mongodb_database)
    await mongo.ensure_indexes()
    store = ObjectStore.from_settings(index_settings)
    await store.ensure_bucket()
    broker = Broker(index_settings.amqp_url, index_settings.amqp_exchange)
    await broker.connect()
    await FakeWorker(broker, PackageRepository(mongo), index_settings.amqp_exchange).start()
    index = TestClient(TestServer(create_index_app(index_settings)))
    upload = TestClient(TestServer(create_upload_app(upload_settings)))
    await index.start_server()
    await upload.start_server()
    try:
        yield {"mongo": mongo, "seed": Seeder(mongo, store), "index": index, "upload": upload}
    finally:
        await index.close()
        await upload.close()
        await broker.close()
        await mongo.close()


async def credentials_for(w: dict, c: Caller, project: dict, source: dict) -> dict[str, str]:
    """`source` is the public project ci/tools, in the public group `ci`: home of the other callers' tokens."""
    seed: Seeder = w["seed"]
    tenancy = seed.tenancy
    if c.label == "wrong password":
        return basic("someone", "not-a-token")
    if c.kind == "anonymous":
        return {}
    if c.kind == "user":
        user = await seed.user("caller")
        if c.role is not None:
            await seed.member(user, "project", project, c.role)
        return basic("caller", await seed.token(user, (c.scope,)))
    if c.kind == "deploy":
        home = project if c.home in ("project", "group") else source
        where = {"project_id": home["_id"]} if c.home.endswith("project") else {"group_id": home["ancestor_ids"][-1]}
        _, token = await tenancy.create_deploy_token("deployer", [c.scope], None, **where)
        return basic("deployer", token)
    user = await seed.user("ci-user")
    home = project if c.job == "own" else source
    await seed.member(user, "project", home, Role.DEVELOPER)
    if c.job == "allowed":
        await tenancy.allow_job_tokens(project["_id"], source["_id"])
    _, token = await tenancy.create_job(home["_id"], user["_id"])
    return basic("gitlab-ci-token", token)


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.label)
@pytest.mark.parametrize("visibility", ["public", "internal", "private"])
async def test_access_matrix(world, visibility: str, caller: Caller) -> None:
    w = world
    seed: Seeder = w["seed"]
    await seed.tenancy.set_instance_settings({"forwarding": False})
    group = await seed.group("acme", visibility)
    project = await seed.project("acme/app", visibility)
    await seed.group("ci", "public")
    source = await seed.project("ci/tools", "public")
    entry = await seed.add_file(project, "matrix_pkg-1.0-py3-none-any.whl", wheel("matrix_pkg", "1.0"),
                                name="matrix-pkg", version="1.0",
                                metadata=b"Metadata-Version: 2.1\nName: matrix-pkg\nVersion: 1.0\n")
    package_id = await seed.packages.ensure_package(PackageRecord(
        id=0, project_id=project["_id"], name="matrix-pkg", version="1.0", display_name="matrix-pkg",
        display_version="1.0"))
    await seed.mongo.distributions.update_one({"sha256": entry.sha256}, {"$set": {"package_id": package_id}})
    await seed.publish_pages()
    headers = await credentials_for(w, caller, project, source)

    p = f"/api/v4/projects/{project['_id']}/packages/pypi"
    g = f"/api/v4/groups/{group['_id']}/-/packages/pypi"
    routes = {
        "project index": f"{p}/simple", "project page": f"{p}/simple/matrix-pkg",
        "project file": f"{p}/files/{entry.sha256}/{entry.filename}",
        "group index": f"{g}/simple", "group page": f"{g}/simple/matrix-pkg",
        "group file": f"{g}/files/{entry.sha256}/{entry.filename}",
        "project metadata": f"{p}/files/{entry.sha256}/{entry.filename}.metadata",
        "group metadata": f"{g}/files/{entry.sha256}/{entry.filename}.metadata",
        "project packages": f"/api/v4/projects/{project['_id']}/packages",
        "group packages": f"/api/v4/groups/{group['_id']}/packages",
        "package": f"/api/v4/projects/{project['_id']}/packages/{package_id}",
        "package files": f"/api/v4/projects/{project['_id']}/packages/{package_id}/package_files",
    }
    got: dict[str, int] = {}
    for route, path in routes.items():
        response = await w["index"].get(path, headers=headers, allow_redirects=False)
        got[route] = response.status
        body = await response.read()
        if response.status == 401:
            assert response.headers.get("WWW-Authenticate") == REALM, route
        if route in ("group index", "group packages") and response.status == 200:
            assert (b"matrix-pkg" in body) == (expected(visibility, caller)["project index"] == 200), route

    form = aiohttp.FormData()
    version = f"2.{uuid.uuid4().int % 10_000}"
    content = wheel("matrix_pkg", version)
    form.add_field("name", "matrix-pkg")
    form.add_field("version", version)
    form.add_field("content", content, filename=f"matrix_pkg-{version}-py3-none-any.whl")
    response = await w["upload"].post(p, data=form, headers=headers)
    got["upload"] = response.status
    if response.status == 401:
        assert response.headers.get("WWW-Authenticate") == REALM

    assert got == expected(visibility, caller)


async def test_unknown_project_or_group_is_404_before_credentials(world) -> None:
    bad_job = basic("gitlab-ci-token", "glcbt-not-a-job")
    huge = "9" * 23  # past any int64 id: names nothing, and must not reach the database as a number
    for path in ("/api/v4/projects/424242/packages/pypi/simple", "/api/v4/projects/no%2Fsuch/packages/pypi/simple",
                 "/api/v4/groups/424242/-/packages/pypi/simple", "/api/v4/groups/no-such/-/packages/pypi/simple/x",
                 f"/api/v4/projects/{huge}/packages/pypi/simple", f"/api/v4/groups/{huge}/-/packages/pypi/simple/",
                 "/api/v4/projects/%C2%B2/packages/pypi/simple", f"/api/v4/projects/{huge}/packages",
                 f"/api/v4/groups/{huge}/-/packages", f"/api/v4/projects/{huge}/packages/1/package_files"):
        response = await world["index"].get(path, headers=bad_job)
        assert (response.status, await response.json()) == (404, {"message": "404 Not Found"}), path
    for project in ("424242", huge):
        response = await world["upload"].post(f"/api/v4/projects/{project}/packages/pypi", data=aiohttp.FormData(
            {"name": "x", "version": "1.0", "content": b""}), headers=bad_job)
        assert response.status in (400, 404)  # a malformed form may be refused first (SPEC §3.1, upload step 1)
    form = aiohttp.FormData({"name": "x", "version": "1.0"})
    form.add_field("content", b"x", filename="x-1.0.tar.gz")
    response = await world["upload"].post(f"/api/v4/projects/{huge}/packages/pypi", data=form, headers=bad_job)
    assert (response.status, await response.json()) == (404, {"message": "404 Not Found"})


async def test_bad_job_token_is_401_even_on_public(world) -> None:
    seed: Seeder = world["seed"]
    await seed.group("pub", "public")
    project = await seed.project("pub/app", "public")
    response = await world["index"].get(f"/api/v4/projects/{project['_id']}/packages/pypi/simple",
                                        headers=basic("gitlab-ci-token", "glcbt-not-a-job"))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == REALM
    assert await response.json() == {"message": "401 Unauthorized"}


@pytest.mark.parametrize("how", ["expired", "revoked", "finished job", "revoked deploy token"])
async def test_dead_credentials_are_401(world, how: str) -> None:
    seed: Seeder = world["seed"]
    tenancy = seed.tenancy
    await seed.group("pub", "public")
    project = await seed.project("pub/app", "public")
    user = await seed.user("u")
    if how == "expired":
        doc, token = await tenancy.create_personal_token(user["_id"], ["api"], datetime.now(UTC) - timedelta(days=1))
        headers = basic("u", token)
    elif how == "revoked":
        doc, token = await tenancy.create_personal_token(user["_id"], ["api"], None)
        await tenancy.revoke("personal_tokens", doc["_id"])
        headers = basic("u", token)
    elif how == "finished job":
        doc, token = await tenancy.create_job(project["_id"], user["_id"])
        await tenancy.finish_job(doc["_id"])
        headers = basic("gitlab-ci-token", token)
    else:
        doc, token = await tenancy.create_deploy_token("d", ["read_package_registry"], None, project_id=project["_id"])
        await tenancy.revoke("deploy_tokens", doc["_id"])
        headers = basic("d", token)
    for client, method, path in ((world["index"], "GET", f"/api/v4/projects/{project['_id']}/packages/pypi/simple"),
                                 (world["upload"], "POST", f"/api/v4/projects/{project['_id']}/packages/pypi")):
        data = aiohttp.FormData({"name": "x", "version": "1.0"}) if method == "POST" else None
        if data is not None:
            data.add_field("content", wheel("x", "1.0"), filename="x-1.0-py3-none-any.whl")
        response = await client.request(method, path, headers=headers, data=data)
        assert response.status == 401, (how, path)
        assert response.headers["WWW-Authenticate"] == REALM
