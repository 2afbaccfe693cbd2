"""Read-time policy on local pages (SPEC §9) with fakes of our own ports: withheld files vanish, a page whose
files are all withheld is still a page, the ETag changes when a file matures, statuses per project."""
from __future__ import annotations

import json
import time
from typing import Any

from aiohttp.test_utils import make_mocked_request

from index_api.access import AccessCaches, ReadScope
from index_api.cache import PageCache
from index_api.pages import CachedPage
from index_api.policy import ReadPolicy
from index_api.policy_api import client_ip
from index_api.service import ReadService, RedirectForwarder
from registry_shared.adapters.policies import PolicyBook
from registry_shared.domain.simple import HTML_TYPE, JSON_TYPE, FileEntry
from registry_shared.policy.document import PolicyDocument, parse_policy
from registry_shared.policy.status import PackageStatus, Status
from registry_shared.records.pages import PackagePageDoc

HOUR = 3600.0
NOW = 1_800_000_000.0


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Repo:
    """The read port's pages and a group's projects; the policy port's documents and statuses."""

    def __init__(self, files: list[FileEntry], policies: dict[str, dict[str, Any]],
                 statuses: dict[tuple[int, str], PackageStatus] | None = None) -> None:
        self.files = files
        self.policies = {k: parse_policy(v) for k, v in policies.items()}
        self.statuses = statuses or {}

    async def package_page(self, kind: str, scope_id: int, name: str) -> PackagePageDoc | None:
        files = [f for f in self.files if kind == "group" or f.project_id == scope_id]
        return PackagePageDoc(kind, scope_id, name, tuple(sorted({f.version for f in files})), tuple(files))

    async def descendant_projects(self, group_id: int) -> list[dict[str, Any]]:
        return [{"_id": 10, "ancestor_ids": [group_id]}, {"_id": 11, "ancestor_ids": [group_id, 3]}]

    async def all(self) -> dict[str, PolicyDocument]:
        return self.policies

    async def all_statuses(self) -> dict[tuple[int, str], PackageStatus]:
        return self.statuses


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def read_service(repo: Repo, clock: Clock) -> ReadService:
    policy = ReadPolicy(PolicyBook(repo), repo, clock)  # type: ignore[arg-type]
    return ReadService(repo, blobs=None, page_cache=PageCache(), caches=AccessCaches(60),  # type: ignore[arg-type]
                       forwarder=RedirectForwarder(), base_url="https://r", policy=policy, clock=clock)


def entry(version: str, uploaded: float, project_id: int = 10) -> FileEntry:
    return FileEntry(f"pkg-{version}.tar.gz", "a" * 64, 1, stamp(uploaded), version, project_id=project_id)


PROJECT = ReadScope("project", 10, "app", True, {"_id": 10, "ancestor_ids": [2]})
GROUP = ReadScope("group", 2, "acme", True, {"_id": 2, "ancestor_ids": []}, readable=frozenset({10, 11}))


def listed(page: CachedPage | None) -> list[str]:
    assert page is not None
    return [f["filename"] for f in json.loads(page.body)["files"]]


async def test_a_local_file_matures_and_the_page_and_its_etag_change_without_a_rebuild() -> None:
    repo = Repo([entry("1.0", NOW - 100 * HOUR), entry("2.0", NOW - HOUR)],
                {"group:2": {"cooldown_hours": 72, "cooldown_applies_to": "all"}})
    clock = Clock()
    svc = read_service(repo, clock)
    young = await svc.package_page(PROJECT, "pkg", JSON_TYPE)
    assert listed(young) == ["pkg-1.0.tar.gz"]
    assert young is not None and young.expires_at == NOW + 71 * HOUR
    assert json.loads(young.body)["versions"] == ["1.0"]
    clock.now = NOW + 70 * HOUR
    assert await svc.package_page(PROJECT, "pkg", JSON_TYPE) is young  # cached until the moment it matures
    clock.now = NOW + 71 * HOUR
    mature = await svc.package_page(PROJECT, "pkg", JSON_TYPE)
    assert listed(mature) == ["pkg-1.0.tar.gz", "pkg-2.0.tar.gz"]
    assert mature is not None and mature.etag != young.etag and mature.expires_at is None


async def test_a_page_whose_files_are_all_withheld_is_still_a_page() -> None:
    repo = Repo([entry("1.0", NOW - HOUR)],
                {"instance": {"blocked": [{"name": "p*", "versions": "*", "reason": "MAL-1"}]}})
    page = await read_service(repo, Clock()).package_page(PROJECT, "pkg", HTML_TYPE)
    assert page is not None and b"pkg-1.0" not in page.body and b"Links for pkg" in page.body


async def test_each_project_on_a_group_page_gets_its_own_levels() -> None:
    repo = Repo([entry("1.0", NOW - HOUR, 10), entry("2.0", NOW - HOUR, 11)],
                {"group:3": {"blocked": [{"name": "pkg", "versions": "*", "reason": "sub-group rule"}]}})
    page = await read_service(repo, Clock()).package_page(GROUP, "pkg", JSON_TYPE)
    assert listed(page) == ["pkg-1.0.tar.gz"]  # project 11 is under group 3, project 10 is not


async def test_a_quarantine_hides_that_projects_files_only() -> None:
    repo = Repo([entry("1.0", NOW - HOUR, 10), entry("2.0", NOW - HOUR, 11)], {},
                {(11, "pkg"): PackageStatus(11, "pkg", Status.QUARANTINED, "checking")})
    svc = read_service(repo, Clock())
    group_page = await svc.package_page(GROUP, "pkg", JSON_TYPE)
    assert listed(group_page) == ["pkg-1.0.tar.gz"]
    assert group_page is not None and "project-status" not in json.loads(group_page.body)  # the projects differ
    project = ReadScope("project", 11, "lib", True, {"_id": 11, "ancestor_ids": [2, 3]})
    page = await svc.package_page(project, "pkg", HTML_TYPE)
    assert page is not None and b'<meta name="pypi:project-status" content="quarantined">' in page.body
    assert b"pkg-2.0" not in page.body
    assert b'<meta name="pypi:repository-version" content="1.4">' in page.body


def test_the_audited_address_is_the_one_the_gateway_saw() -> None:
    spoofed = make_mocked_request("PUT", "/", headers={"X-Forwarded-For": "6.6.6.6, 10.1.2.3"})
    assert client_ip(spoofed) == "10.1.2.3"
    assert client_ip(make_mocked_request("PUT", "/", headers={"X-Forwarded-For": "10.1.2.4"})) == "10.1.2.4"
