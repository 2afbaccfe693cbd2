"""GitLab's Packages API on index-api (E10-E13) against the session's real servers: JSON shapes, filters,
order, pagination headers, permissions, and deletion (pages rebuilt before the 204, events published)."""
from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.packages import PackageRepository
from registry_shared.domain.access import Role
from registry_shared.domain.names import normalize_name
from registry_shared.domain.versions import canonical_version
from registry_shared.events import Event, FileDeleted, IndexChanged, parse_event
from registry_shared.pages import PageBuilder
from registry_shared.records.packages import PackageRecord
from tests.integration.index_api.index_support import BASE, Seeder, basic

METADATA = {"summary": "Alpha does things", "description": "# Alpha\n\nLong text.", "metadata_version": "2.1",
            "description_content_type": "text/markdown", "keywords": "alpha,things",
            "author_email": "Ann <ann@example.test>", "requires_dist": ["requests>=2"]}


class World:
    """Private group `acme` with `acme/api` (private), `acme/sub/tools` (private) and `acme/open` (public);
    one user per role on `acme/api`, and deploy tokens of it."""

    def __init__(self, seed: Seeder) -> None:
        self.seed = seed
        self.builder = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
        self.tokens: dict[str, str] = {}
        self.packages: dict[str, int] = {}  # "name==version" -> package id
        self.files: dict[str, dict[str, Any]] = {}  # filename -> distributions document

    async def build(self) -> World:
        seed = self.seed
        self.group = await seed.group("acme", "private")
        self.sub = await seed.group("acme/sub", "private")
        self.api = await seed.project("acme/api", "private")
        self.tools = await seed.project("acme/sub/tools", "private")
        self.open = await seed.project("acme/open", "public")
        for role in (Role.GUEST, Role.REPORTER, Role.DEVELOPER, Role.MAINTAINER, Role.OWNER):
            user = await seed.user(role.name.lower())
            await seed.member(user, "project", self.api, role)
            self.tokens[role.name.lower()] = await seed.token(user, ("api",))
            if role is Role.MAINTAINER:
                self.tokens["maintainer_read_api"] = await seed.token(user, ("read_api",))
            if role is Role.REPORTER:
                await seed.member(user, "project", self.tools, Role.REPORTER)
        outsider = await seed.user("outsider")
        self.tokens["outsider"] = await seed.token(outsider, ("api",))
        admin = await seed.user("root", admin=True)
        self.tokens["admin"] = await seed.token(admin, ("api",))
        for scopes, key in ((["read_package_registry", "write_package_registry"], "deploy_write"),
                            (["read_package_registry"], "deploy_read")):
            _, self.tokens[key] = await seed.tenancy.create_deploy_token(key, scopes, None, project_id=self.api["_id"])
        _, self.tokens["deploy_other"] = await seed.tenancy.create_deploy_token(
            "other", ["write_package_registry"], None, project_id=self.open["_id"])
        await self.add(self.api, "alpha", "1.0", ["alpha-1.0-py3-none-any.whl", "alpha-1.0.tar.gz"],
                       requires_python=">=3.8")
        await self.add(self.api, "alpha", "1.10", ["alpha-1.10.tar.gz"])
        await self.add(self.api, "alpha", "1.9", ["alpha-1.9.tar.gz"])
        await self.add(self.api, "Beta.Tool", "2.0", ["beta_tool-2.0.tar.gz"])
        await self.add(self.tools, "gamma", "0.1", ["gamma-0.1.tar.gz"])
        await self.add(self.open, "delta", "3.0", ["delta-3.0.tar.gz"])
        return self

    async def add(self, project: dict[str, Any], name: str, version: str, filenames: list[str],
                  requires_python: str | None = None) -> None:
        """Files indexed as the worker leaves them: a package, installable files, pages of every scope."""
        packages = self.seed.packages
        for filename in filenames:
            await self.seed.add_file(project, filename, f"{filename} bytes".encode(), name=name,
                                     version=version, requires_python=requires_python,
                                     metadata=f"Metadata-Version: 2.1\nName: {name}\n".encode())
            package_id = await packages.ensure_package(PackageRecord(
                id=0, project_id=project["_id"], name=normalize_name(name), version=canonical_version(version),
                display_name=name, display_version=version))
            doc = await packages.find_file(project["_id"], filename)
            assert doc is not None
            fields = {"package_id": package_id, **METADATA, "requires_python": requires_python}
            await self.seed.mongo.distributions.update_one({"_id": doc.id}, {"$set": fields})
            self.packages[f"{name}=={version}"] = package_id
            self.files[filename] = {**doc.to_doc(), "package_id": package_id}
        await self.builder.rebuild_scopes(project, [normalize_name(name)])

    def auth(self, who: str | None) -> dict[str, str]:
        return basic("__token__", self.tokens[who]) if who else {}


@pytest.fixture
async def world(seed: Seeder) -> World:
    return await World(seed).build()


@pytest.fixture
async def events(broker: Broker) -> asyncio.Queue[Event]:
    """Every `index.changed` and `file.deleted` published on the test's exchange."""
    received: asyncio.Queue[Event] = asyncio.Queue()
    queue = await broker.declare_private_queue([IndexChanged.kind, FileDeleted.kind])

    async def on_message(message) -> None:
        async with message.process():
            received.put_nowait(parse_event(message.type, message.body))

    await broker.consume(queue, on_message)
    return received


async def next_events(queue: asyncio.Queue[Event], count: int) -> list[Event]:
    async with asyncio.timeout(10):
        return [await queue.get() for _ in range(count)]


def ids(body: list[dict[str, Any]]) -> list[str]:
    return [f"{p['name']}=={p['version']}" for p in body]


# -- E10: list ---------------------------------------------------------------------------------

async def test_project_list_json_as_gitlab_writes_it(client: TestClient, world: World) -> None:
    pid = world.api["_id"]
    response = await client.get(f"/api/v4/projects/{pid}/packages", headers=world.auth("maintainer"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert ids(body) == ["alpha==1.0", "alpha==1.10", "alpha==1.9", "Beta.Tool==2.0"]  # created_at, oldest first
    first = body[0]
    package_id = world.packages["alpha==1.0"]
    assert first == {
        "id": package_id, "name": "alpha", "version": "1.0", "package_type": "pypi", "status": "default",
        "_links": {"web_path": f"/acme/api/-/packages/{package_id}",
                   "delete_api_path": f"{BASE}/api/v4/projects/{pid}/packages/{package_id}"},
        "created_at": first["created_at"], "last_downloaded_at": None, "project_id": pid,
        "project_path": "acme/api", "tags": [],
        # SPEC §10 (beyond GitLab): the release's yank and download total.
        "downloads": 0, "yanked": False, "yanked_reason": None,
    }
    assert first["created_at"].endswith("Z") and len(first["created_at"]) == len("2019-11-27T03:37:38.711Z")
    assert response.headers["X-Total"] == "4" and response.headers["X-Page"] == "1"


async def test_list_by_encoded_path_and_delete_link_only_for_who_may_delete(client: TestClient, world: World) -> None:
    response = await client.get("/api/v4/projects/acme%2Fapi/packages", headers=world.auth("reporter"))
    assert response.status == 200
    body = await response.json()
    assert len(body) == 4 and all("delete_api_path" not in p["_links"] for p in body)


async def test_pagination_headers(client: TestClient, world: World) -> None:
    pid = world.api["_id"]
    response = await client.get(f"/api/v4/projects/{pid}/packages?order_by=name&per_page=2&page=2",
                                headers=world.auth("reporter"))
    assert response.status == 200
    assert ids(await response.json()) == ["alpha==1.9", "Beta.Tool==2.0"]
    url = f"{BASE}/api/v4/projects/{pid}/packages?order_by=name"
    assert {k: v for k, v in response.headers.items() if k.startswith("X-") and k.lower() != "x-request-id"} == {
        "X-Total": "4", "X-Total-Pages": "2", "X-Page": "2", "X-Per-Page": "2", "X-Next-Page": "",
        "X-Prev-Page": "1"}
    # The request's parameters keep their places, as GitLab's links keep them.
    assert response.headers["Link"] == (f'<{url}&per_page=2&page=1>; rel="prev", '
                                        f'<{url}&per_page=2&page=1>; rel="first", '
                                        f'<{url}&per_page=2&page=2>; rel="last"')
    first = await client.get("/api/v4/projects/acme%2Fapi/packages?per_page=3", headers=world.auth("reporter"))
    assert [first.headers[h] for h in ("X-Next-Page", "X-Prev-Page", "X-Total-Pages")] == ["2", "", "2"]
    assert f'<{BASE}/api/v4/projects/acme%2Fapi/packages?per_page=3&page=2>; rel="next"' in first.headers["Link"]
    beyond = await client.get(f"/api/v4/projects/{pid}/packages?page=9", headers=world.auth("reporter"))
    assert await beyond.json() == [] and beyond.headers["X-Prev-Page"] == "" and beyond.headers["X-Total"] == "4"
    capped = await client.get(f"/api/v4/projects/{pid}/packages?per_page=1000", headers=world.auth("reporter"))
    assert capped.headers["X-Per-Page"] == "100"


@pytest.mark.parametrize(("query", "expected"), [
    ("order_by=version", ["alpha==1.0", "alpha==1.9", "alpha==1.10", "Beta.Tool==2.0"]),  # PEP 440, not text
    ("order_by=version&sort=desc", ["Beta.Tool==2.0", "alpha==1.10", "alpha==1.9", "alpha==1.0"]),
    ("order_by=name&sort=desc", ["Beta.Tool==2.0", "alpha==1.9", "alpha==1.10", "alpha==1.0"]),
    ("order_by=type", ["alpha==1.0", "alpha==1.10", "alpha==1.9", "Beta.Tool==2.0"]),
    ("sort=desc", ["Beta.Tool==2.0", "alpha==1.9", "alpha==1.10", "alpha==1.0"]),
    ("package_name=ALP", ["alpha==1.0", "alpha==1.10", "alpha==1.9"]),
    ("package_name=beta_tool", ["Beta.Tool==2.0"]),
    ("package_version=1.0.0", ["alpha==1.0"]),  # one release, however spelled
    ("package_name=alpha&package_version=1.9", ["alpha==1.9"]),
    ("package_type=pypi&status=default", ["alpha==1.0", "alpha==1.10", "alpha==1.9", "Beta.Tool==2.0"]),
    ("package_type=npm", []),
    ("status=hidden", []),
    ("package_name=zzz", []),
])
async def test_filters_and_order(client: TestClient, world: World, query: str, expected: list[str]) -> None:
    response = await client.get(f"/api/v4/projects/{world.api['_id']}/packages?{query}",
                                headers=world.auth("reporter"))
    assert response.status == 200
    assert ids(await response.json()) == expected
    assert response.headers["X-Total"] == str(len(expected))


@pytest.mark.parametrize(("query", "param"), [
    ("order_by=size", "order_by"), ("order_by=project_path", "order_by"), ("sort=up", "sort"),
    ("package_type=wheel", "package_type"), ("status=gone", "status"), ("page=0", "page"), ("page=x", "page"),
    ("per_page=-1", "per_page"), ("per_page=1.5", "per_page"),
])
async def test_invalid_parameters_are_400(client: TestClient, world: World, query: str, param: str) -> None:
    response = await client.get(f"/api/v4/projects/{world.api['_id']}/packages?{query}",
                                headers=world.auth("reporter"))
    assert (response.status, await response.json()) == (400, {"error": f"{param} is invalid"})


async def test_group_list_holds_readable_descendant_projects(client: TestClient, world: World) -> None:
    url = f"/api/v4/groups/{world.group['_id']}/packages?order_by=project_path&per_page=100"
    owner = await client.get(url, headers=world.auth("owner"))  # a member of acme/api only
    assert ids(await owner.json()) == ["alpha==1.0", "alpha==1.10", "alpha==1.9", "Beta.Tool==2.0", "delta==3.0"]
    reporter = await client.get(url, headers=world.auth("reporter"))  # also reads acme/sub/tools
    body = await reporter.json()
    assert [p["project_path"] for p in body] == ["acme/api"] * 4 + ["acme/open", "acme/sub/tools"]
    assert reporter.headers["X-Total"] == "6"
    anonymous = await client.get(url)  # the group is private, but its public project is readable
    assert ids(await anonymous.json()) == ["delta==3.0"]
    direct = await client.get(url + "&exclude_subgroups=true", headers=world.auth("reporter"))
    assert "gamma==0.1" not in ids(await direct.json()) and len(await direct.json()) == 5
    sub = await client.get("/api/v4/groups/acme%2Fsub/packages", headers=world.auth("reporter"))
    assert ids(await sub.json()) == ["gamma==0.1"]
    admin = await client.get(url, headers=world.auth("admin"))
    assert len(await admin.json()) == 6 and all("delete_api_path" in p["_links"] for p in await admin.json())


@pytest.mark.parametrize(("who", "status"), [
    (None, 401), ("outsider", 404), ("guest", 403), ("reporter", 200), ("deploy_read", 200), ("deploy_other", 404),
])
async def test_list_permissions(client: TestClient, world: World, who: str | None, status: int) -> None:
    response = await client.get(f"/api/v4/projects/{world.api['_id']}/packages", headers=world.auth(who))
    assert response.status == status
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'
        assert await response.json() == {"message": "401 Unauthorized"}


@pytest.mark.parametrize(("header", "who", "status"), [
    ("PRIVATE-TOKEN", "reporter", 200), ("PRIVATE-TOKEN", "guest", 403), ("Deploy-Token", "deploy_read", 200),
    ("PRIVATE-TOKEN", "outsider", 404), ("PRIVATE-TOKEN", None, 401), ("JOB-TOKEN", None, 401),
])
async def test_gitlab_token_headers(client: TestClient, world: World, header: str, who: str | None,
                                    status: int) -> None:
    """GitLab's REST API takes tokens in headers as well as Basic auth (`curl -H "PRIVATE-TOKEN: ..."`)."""
    token = world.tokens[who] if who else "glpat-not-a-token"
    response = await client.get(f"/api/v4/projects/{world.api['_id']}/packages", headers={header: token})
    assert response.status == status
    if status == 200:
        assert ids(await response.json())


async def test_unknown_scope_is_404_before_credentials(client: TestClient, world: World) -> None:
    bad = basic("gitlab-ci-token", "no-such-job")  # would be 401 if credentials were looked at
    for url in ("/api/v4/projects/999999/packages", "/api/v4/groups/nope/packages",
                "/api/v4/projects/acme%2Fnope/packages/1", "/api/v4/projects/999999/packages/1/package_files"):
        response = await client.get(url, headers=bad)
        assert (response.status, await response.json()) == (404, {"message": "404 Not Found"}), url
    response = await client.delete("/api/v4/projects/999999/packages/1", headers=bad)
    assert (response.status, await response.json()) == (404, {"message": "404 Not Found"})


# -- E11, E12: one package and its files --------------------------------------------------------

async def test_show_package_with_pypi_metadata(client: TestClient, world: World) -> None:
    pid, package_id = world.api["_id"], world.packages["alpha==1.0"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/{package_id}", headers=world.auth("reporter"))
    assert response.status == 200
    body = await response.json()
    assert (body["id"], body["name"], body["version"], body["package_type"]) == (package_id, "alpha", "1.0", "pypi")
    assert body["_links"] == {"web_path": f"/acme/api/-/packages/{package_id}"}
    assert [v["version"] for v in body["versions"]] == ["1.10", "1.9"]
    assert body["pypi_metadata"] == {**METADATA, "requires_python": ">=3.8", "required_python": ">=3.8"}
    head = await client.head(f"/api/v4/projects/{pid}/packages/{package_id}", headers=world.auth("reporter"))
    assert head.status == 200


async def test_package_of_another_project_or_unknown_is_404(client: TestClient, world: World) -> None:
    other = world.packages["delta==3.0"]  # in acme/open
    for path in (f"/packages/{other}", f"/packages/{other}/package_files", "/packages/987654"):
        response = await client.get(f"/api/v4/projects/{world.api['_id']}{path}", headers=world.auth("owner"))
        assert (response.status, await response.json()) == (404, {"message": "404 Not Found"}), path
    response = await client.get(f"/api/v4/projects/{world.api['_id']}/packages/abc", headers=world.auth("owner"))
    assert (response.status, await response.json()) == (400, {"error": "package_id is invalid"})


async def test_package_files_as_gitlab_writes_them(client: TestClient, world: World) -> None:
    pid, package_id = world.api["_id"], world.packages["alpha==1.0"]
    response = await client.get(f"/api/v4/projects/{pid}/packages/{package_id}/package_files?per_page=1",
                                headers=world.auth("deploy_read"))
    assert response.status == 200
    wheel = world.files["alpha-1.0-py3-none-any.whl"]
    content = b"alpha-1.0-py3-none-any.whl bytes"
    [entry] = await response.json()
    assert entry == {"id": wheel["_id"], "package_id": package_id, "created_at": entry["created_at"],
                     "file_name": "alpha-1.0-py3-none-any.whl", "size": len(content),
                     "file_md5": hashlib.md5(content).hexdigest(), "file_sha1": None,
                     "file_sha256": hashlib.sha256(content).hexdigest(),
                     "downloads": 0, "last_downloaded_at": None}  # SPEC §10
    assert (response.headers["X-Total"], response.headers["X-Total-Pages"], response.headers["X-Next-Page"]) == (
        "2", "2", "2")
    assert (await client.get(f"/api/v4/projects/{pid}/packages/{package_id}/package_files")).status == 401


# -- E13: delete -------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "status"), [
    (None, 401), ("outsider", 404), ("guest", 403), ("reporter", 403), ("developer", 403),
    ("maintainer_read_api", 403), ("deploy_read", 403), ("deploy_other", 404), ("maintainer", 204), ("owner", 204),
    ("admin", 204), ("deploy_write", 204),
])
async def test_delete_permissions(client: TestClient, world: World, who: str | None, status: int) -> None:
    url = f"/api/v4/projects/{world.api['_id']}/packages/{world.packages['Beta.Tool==2.0']}"
    response = await client.delete(url, headers=world.auth(who))
    assert response.status == status
    if status == 204:
        assert await response.read() == b""
        assert await world.seed.mongo.packages.find_one({"_id": world.packages["Beta.Tool==2.0"]}) is None
    else:
        assert response.headers["Content-Type"].startswith("application/json")
        assert await world.seed.mongo.distributions.find_one({"filename": "beta_tool-2.0.tar.gz"}) is not None
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'


async def test_delete_of_a_package_of_another_project_is_404(client: TestClient, world: World) -> None:
    other = world.packages["delta==3.0"]
    for path in (f"/packages/{other}", f"/packages/{world.packages['alpha==1.0']}/package_files/"
                 f"{world.files['delta-3.0.tar.gz']['_id']}", "/packages/424242"):
        response = await client.delete(f"/api/v4/projects/{world.api['_id']}{path}", headers=world.auth("owner"))
        assert (response.status, await response.json()) == (404, {"message": "404 Not Found"}), path
    assert await world.seed.mongo.distributions.count_documents({"project_id": world.open["_id"]}) == 1


async def test_deleted_file_leaves_every_page_before_the_answer(client: TestClient, world: World,
                                                                events: asyncio.Queue[Event]) -> None:
    pid, package_id = world.api["_id"], world.packages["alpha==1.0"]
    wheel = world.files["alpha-1.0-py3-none-any.whl"]
    page_url = f"/api/v4/projects/{pid}/packages/pypi/simple/alpha/"
    group_page_url = f"/api/v4/groups/{world.group['_id']}/-/packages/pypi/simple/alpha/"
    reader = world.auth("owner")
    for url in (page_url, group_page_url):  # cached by this replica before the delete
        assert wheel["filename"] in await (await client.get(url, headers=reader)).text()

    response = await client.delete(f"/api/v4/projects/{pid}/packages/{package_id}/package_files/{wheel['_id']}",
                                   headers=world.auth("maintainer"))
    assert response.status == 204

    for url in (page_url, group_page_url):
        text = await (await client.get(url, headers=reader)).text()
        assert wheel["filename"] not in text and "alpha-1.0.tar.gz" in text, url
    json_page = await client.get(page_url, headers={**reader, "Accept": "application/vnd.pypi.simple.v1+json"})
    assert [f["filename"] for f in json.loads(await json_page.read())["files"]] == [
        "alpha-1.0.tar.gz", "alpha-1.9.tar.gz", "alpha-1.10.tar.gz"]
    download = await client.get(f"/api/v4/projects/{pid}/packages/pypi/files/{wheel['sha256']}/{wheel['filename']}",
                                headers=reader)
    assert download.status == 404
    mongo = world.seed.mongo
    assert await mongo.distributions.find_one({"_id": wheel["_id"]}) is None
    assert await mongo.core_metadata.find_one({"_id": wheel["_id"]}) is None
    assert await mongo.packages.find_one({"_id": package_id}) is not None  # its sdist is still there
    files = await client.get(f"/api/v4/projects/{pid}/packages/{package_id}/package_files", headers=reader)
    assert [f["file_name"] for f in await files.json()] == ["alpha-1.0.tar.gz"]

    changed, deleted = await next_events(events, 2)
    assert isinstance(changed, IndexChanged) and changed.names == ["alpha"]
    assert {(s.kind, s.id) for s in changed.scopes} == {("project", pid), ("group", world.group["_id"])}
    assert deleted == FileDeleted(file_id=wheel["_id"], project_id=pid, object_keys=[wheel["object_key"]])
    assert await world.seed.store.size(wheel["object_key"]) is not None  # removed later, by the worker


async def test_deleting_the_last_files_removes_the_package_and_the_name(client: TestClient, world: World,
                                                                       events: asyncio.Queue[Event]) -> None:
    pid, package_id = world.api["_id"], world.packages["Beta.Tool==2.0"]
    reader = world.auth("owner")
    index_url = f"/api/v4/projects/{pid}/packages/pypi/simple/"
    group_index_url = f"/api/v4/groups/{world.group['_id']}/-/packages/pypi/simple/"
    for url in (index_url, group_index_url):
        assert "beta-tool" in await (await client.get(url, headers=reader)).text()

    response = await client.delete(f"/api/v4/projects/{pid}/packages/{package_id}", headers=world.auth("owner"))
    assert response.status == 204

    for url in (index_url, group_index_url):
        assert "beta-tool" not in await (await client.get(url, headers=reader)).text()
    gone = await client.get(f"{index_url}beta-tool/", headers=reader, allow_redirects=False)
    assert gone.status == 302  # no longer in the scope: forwarded upstream
    assert (await client.get(f"/api/v4/projects/{pid}/packages/{package_id}", headers=reader)).status == 404
    listed = await client.get(f"/api/v4/projects/{pid}/packages?package_name=beta", headers=reader)
    assert await listed.json() == []
    assert await world.seed.mongo.packages.find_one({"_id": package_id}) is None
    kinds = [e.kind for e in await next_events(events, 2)]
    assert kinds == ["index.changed", "file.deleted"]


async def test_one_file_package_deleted_by_its_file(client: TestClient, world: World) -> None:
    pid, package_id = world.api["_id"], world.packages["alpha==1.9"]
    file_id = world.files["alpha-1.9.tar.gz"]["_id"]
    response = await client.delete(f"/api/v4/projects/{pid}/packages/{package_id}/package_files/{file_id}",
                                   headers=world.auth("deploy_write"))
    assert response.status == 204
    assert await world.seed.mongo.packages.find_one({"_id": package_id}) is None
    again = await client.delete(f"/api/v4/projects/{pid}/packages/{package_id}/package_files/{file_id}",
                                headers=world.auth("deploy_write"))
    assert (again.status, await again.json()) == (404, {"message": "404 Not Found"})


async def test_interrupted_delete_is_finished_by_a_retry(client: TestClient, world: World) -> None:
    """A deletion that stopped after marking its files (e.g. the broker refused) is hidden, then finished."""
    pid, package_id = world.api["_id"], world.packages["alpha==1.10"]
    file = world.files["alpha-1.10.tar.gz"]
    await world.seed.mongo.distributions.update_one({"_id": file["_id"]}, {"$set": {"state": "deleting"}})
    listed = await client.get(f"/api/v4/projects/{pid}/packages", headers=world.auth("owner"))
    assert "alpha==1.10" not in ids(await listed.json())
    response = await client.delete(f"/api/v4/projects/{pid}/packages/{package_id}", headers=world.auth("owner"))
    assert response.status == 204
    assert await world.seed.mongo.distributions.find_one({"_id": file["_id"]}) is None
    assert await world.seed.mongo.packages.find_one({"_id": package_id}) is None


async def test_deletion_reaches_the_pages_of_every_ancestor_group(client: TestClient, world: World,
                                                                  events: asyncio.Queue[Event]) -> None:
    """A file of `acme/sub/tools` leaves the pages of the project, `acme/sub` and `acme` before the 204."""
    tools, gamma = world.tools, world.files["gamma-0.1.tar.gz"]
    pages = [f"/api/v4/projects/{tools['_id']}/packages/pypi/simple/gamma/",
             f"/api/v4/groups/{world.sub['_id']}/-/packages/pypi/simple/gamma/",
             f"/api/v4/groups/{world.group['_id']}/-/packages/pypi/simple/gamma/"]
    reader = world.auth("admin")
    for url in pages:  # cached before the delete
        assert gamma["filename"] in await (await client.get(url, headers=reader)).text(), url

    response = await client.delete(f"/api/v4/projects/{tools['_id']}/packages/{world.packages['gamma==0.1']}"
                                   f"/package_files/{gamma['_id']}", headers=world.auth("admin"))
    assert response.status == 204

    for url in pages:
        page = await client.get(url, headers=reader, allow_redirects=False)
        assert page.status == 302, url  # the name left every scope: forwarded upstream
    for url in (f"/api/v4/groups/{world.sub['_id']}/-/packages/pypi/simple/",
                f"/api/v4/groups/{world.group['_id']}/-/packages/pypi/simple/"):
        assert "gamma" not in await (await client.get(url, headers=reader)).text(), url
    changed, _deleted = await next_events(events, 2)
    assert isinstance(changed, IndexChanged)
    assert {(s.kind, s.id) for s in changed.scopes} == {
        ("project", tools["_id"]), ("group", world.group["_id"]), ("group", world.sub["_id"])}
