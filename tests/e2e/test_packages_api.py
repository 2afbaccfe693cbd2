"""GitLab's Packages API through the gateway (E10-E13): upload with twine, list, show with `pypi_metadata`,
delete a file and then the package; every index-api replica stops listing them at once, and the worker
removes their objects afterwards."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import requests
from minio import Minio
from minio.error import S3Error
from pymongo import MongoClient

from tests.support.servers import wait_until
from tests.support.tenants import private_project

from .clients import twine_upload
from .packages import build_package
from .test_walking_registry import client_env


@pytest.fixture(scope="module")
def shop(registry_stack, tmp_path_factory) -> dict[str, Any]:
    """Private group `shop`, project `shop/app`; a maintainer who uploaded `shop-item` 1.0 (wheel and sdist)."""
    tenant = private_project(registry_stack, "shop-maintainer", "shop/app", role="maintainer")
    work = tmp_path_factory.mktemp("shop")
    dists = build_package(work, "shop-item", "1.0", value=1, readme="# Shop item\n\nSells things.\n",
                          requires_python=">=3.9")
    result = twine_upload(dists, client_env(work), "--repository-url", tenant.upload_url, "-u", "__token__",
                          "-p", tenant.token)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"group": tenant.group, "project": tenant.project, "token": tenant.token, "wheel": dists[0],
            "sdist": dists[1]}


def api(registry_stack, shop, method: str, path: str, base: str | None = None) -> requests.Response:
    return requests.request(method, f"{base or registry_stack.base_url}/api/v4{path}",
                            auth=("__token__", shop["token"]), timeout=30, allow_redirects=False)


def object_exists(env: dict[str, str], key: str) -> bool:
    endpoint = env["S3_ENDPOINT"].split("://", 1)[1]
    client = Minio(endpoint, access_key=env["S3_ACCESS_KEY"], secret_key=env["S3_SECRET_KEY"], secure=False)
    try:
        client.stat_object(env["S3_BUCKET"], key)
        return True
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
            return False
        raise


def listed_everywhere(registry_stack, shop, filename: str) -> list[bool]:
    """Whether each replica's project page and group page of `shop-item` list `filename`."""
    seen = []
    roots = (f"/projects/{shop['project']['id']}/packages/pypi", f"/groups/{shop['group']['id']}/-/packages/pypi")
    for replica in registry_stack.index_replica_urls:
        for root in roots:
            page = api(registry_stack, shop, "GET", f"{root}/simple/shop-item/", base=replica)
            seen.append(page.status_code == 200 and filename in page.text)
    return seen


def test_list_show_files_then_delete_everywhere(registry_stack, shop) -> None:
    pid = shop["project"]["id"]
    listing = api(registry_stack, shop, "GET", f"/projects/{pid}/packages")
    assert listing.status_code == 200, listing.text
    [package] = listing.json()
    assert (package["name"], package["version"], package["package_type"], package["status"]) == (
        "shop-item", "1.0", "pypi", "default")
    assert package["_links"]["web_path"] == f"/shop/app/-/packages/{package['id']}"
    assert listing.headers["X-Total"] == "1" and listing.headers["X-Total-Pages"] == "1"
    group_listing = api(registry_stack, shop, "GET", "/groups/shop/packages?package_type=pypi")
    assert [p["id"] for p in group_listing.json()] == [package["id"]]

    shown = api(registry_stack, shop, "GET", f"/projects/{pid}/packages/{package['id']}").json()
    metadata = shown["pypi_metadata"]
    assert metadata["summary"] == "End-to-end test package"
    assert metadata["description"].startswith("# Shop item")
    assert metadata["description_content_type"] == "text/markdown"
    assert metadata["requires_python"] == metadata["required_python"] == ">=3.9"
    assert metadata["keywords"] in ("e2e,registry", "e2e, registry")
    assert metadata["metadata_version"].startswith("2.")

    files = api(registry_stack, shop, "GET", f"/projects/{pid}/packages/{package['id']}/package_files").json()
    by_name = {f["file_name"]: f for f in files}
    for path in (shop["wheel"], shop["sdist"]):
        assert by_name[path.name]["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert by_name[path.name]["size"] == path.stat().st_size
    db = MongoClient(registry_stack.env["MONGODB_URL"], tz_aware=True).get_default_database()
    keys = {d["filename"]: d["object_key"] for d in db.distributions.find({"project_id": pid})}
    assert all(object_exists(registry_stack.env, key) for key in keys.values())

    wheel, sdist = shop["wheel"].name, shop["sdist"].name
    assert all(listed_everywhere(registry_stack, shop, wheel))  # both replicas have the pages cached now
    deleted = api(registry_stack, shop, "DELETE",
                  f"/projects/{pid}/packages/{package['id']}/package_files/{by_name[wheel]['id']}")
    assert deleted.status_code == 204, deleted.text
    assert not any(listed_everywhere(registry_stack, shop, wheel))  # at once: no waiting
    assert all(listed_everywhere(registry_stack, shop, sdist))
    wait_until(lambda: not object_exists(registry_stack.env, keys[wheel]), 20, "the wheel's object removed")
    assert object_exists(registry_stack.env, keys[sdist])

    gone = api(registry_stack, shop, "DELETE", f"/projects/{pid}/packages/{package['id']}")
    assert gone.status_code == 204, gone.text
    for replica in registry_stack.index_replica_urls:
        index = api(registry_stack, shop, "GET", f"/projects/{pid}/packages/pypi/simple/", base=replica)
        assert "shop-item" not in index.text, replica
        assert api(registry_stack, shop, "GET", f"/projects/{pid}/packages/{package['id']}", base=replica
                   ).status_code == 404
    assert api(registry_stack, shop, "GET", f"/projects/{pid}/packages").json() == []
    wait_until(lambda: not object_exists(registry_stack.env, keys[sdist]), 20, "the sdist's object removed")
    assert db.distributions.count_documents({"project_id": pid}) == 0
    assert db.packages.count_documents({"project_id": pid}) == 0


def test_delete_needs_a_maintainer(registry_stack, shop, tmp_path: Path) -> None:
    admin = registry_stack.admin
    admin("user", "create", "--username", "shop-dev")
    admin("member", "add", "--user", "shop-dev", "--project", "shop/app", "--role", "developer")
    token = admin("token", "create", "--user", "shop-dev", "--scopes", "api")["token"]
    dists = build_package(tmp_path, "shop-kept", "2.0", value=2)
    url = f"{registry_stack.base_url}/api/v4/projects/{shop['project']['id']}/packages/pypi"
    result = twine_upload(dists, client_env(tmp_path), "--repository-url", url, "-u", "__token__", "-p", token)
    assert result.returncode == 0, result.stdout + result.stderr
    listing = requests.get(f"{registry_stack.base_url}/api/v4/projects/shop%2Fapp/packages?package_name=kept",
                           auth=("__token__", token), timeout=30)
    [package] = listing.json()
    assert "delete_api_path" not in package["_links"]
    path = f"/api/v4/projects/{shop['project']['id']}/packages/{package['id']}"
    refused = requests.delete(registry_stack.base_url + path, auth=("__token__", token), timeout=30)
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
    anonymous = requests.delete(registry_stack.base_url + path, timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="GitLab Packages Registry"'
