"""Use cases with fakes of our own ports: page caching (including misses), credential caching."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest

from index_api.access import AccessCaches, ReadAccess, ReadScope
from index_api.cache import PageCache
from index_api.service import ReadService, RedirectForwarder
from registry_shared.domain.access import ANONYMOUS, Principal, PrincipalKind
from registry_shared.domain.simple import HTML_TYPE, FileEntry
from registry_shared.errors import PackageNotFound, Unauthorized
from registry_shared.records.pages import PackagePageDoc


class FakeRepo:
    """Stored page documents by (kind, id, name); answers with the models, as MongoReadRepository does."""

    def __init__(self, docs: dict[tuple[str, int, str | None], dict[str, Any]]) -> None:
        self.docs = docs
        self.reads = 0

    async def package_page(self, kind: str, scope_id: int, name: str) -> PackagePageDoc | None:
        self.reads += 1
        doc = self.docs.get((kind, scope_id, name))
        return PackagePageDoc.from_doc({"_id": f"{kind}:{scope_id}:{name}", **doc}) if doc else None


def file_doc(project_id: int) -> dict[str, Any]:
    return FileEntry(filename="x-1.0.tar.gz", sha256="a" * 64, size=1, upload_time="2025-01-01T00:00:00Z",
                     version="1.0", project_id=project_id).to_doc()


def service(repo: FakeRepo) -> ReadService:
    return ReadService(repo, blobs=None, page_cache=PageCache(), caches=AccessCaches(60),  # type: ignore[arg-type]
                       forwarder=RedirectForwarder(), base_url="https://r")


PROJECT = ReadScope("project", 1, "api", True, {"_id": 1})


async def test_pages_and_absences_are_served_from_the_cache() -> None:
    repo = FakeRepo({("project", 1, "x"): {"name": "x", "versions": ["1.0"], "files": [file_doc(1)]}})
    svc = service(repo)
    first = await svc.package_page(PROJECT, "X", HTML_TYPE)
    assert first is not None and await svc.package_page(PROJECT, "x", HTML_TYPE) is first
    assert await svc.package_page(PROJECT, "nothing", HTML_TYPE) is None
    assert await svc.package_page(PROJECT, "Nothing", HTML_TYPE) is None
    assert repo.reads == 2  # one read per name, whatever the spelling or the number of requests


async def test_group_name_hidden_from_this_caller_is_404_not_absent() -> None:
    repo = FakeRepo({("group", 2, "x"): {"name": "x", "versions": ["1.0"], "files": [file_doc(7)]}})
    scope = ReadScope("group", 2, "acme", True, {"_id": 2}, readable=frozenset({8}), complete=False)
    with pytest.raises(PackageNotFound):
        await service(repo).package_page(scope, "x", HTML_TYPE)


async def test_invalid_name_is_404_without_reading() -> None:
    repo = FakeRepo({})
    with pytest.raises(PackageNotFound):
        await service(repo).package_page(PROJECT, "-x-", HTML_TYPE)
    assert repo.reads == 0


class CountingResolver:
    def __init__(self, outcome: Principal | None) -> None:
        self.outcome = outcome
        self.calls = 0

    async def resolve(self, username: str | None, password: str | None) -> Principal:
        self.calls += 1
        if self.outcome is None:
            raise Unauthorized()
        return self.outcome


async def test_credentials_are_cached_under_a_hash_of_the_password() -> None:
    user = Principal(kind=PrincipalKind.USER, user_id=3, scopes=frozenset({"api"}))
    resolver = CountingResolver(user)
    caches = AccessCaches(60)
    access = ReadAccess(None, resolver, None, caches)  # type: ignore[arg-type]
    assert await access.authenticate("me", "glpat-secret") == user
    assert await access.authenticate("other-name", "glpat-secret") == user  # the username is ignored
    assert resolver.calls == 1
    stored = list(caches.credentials._entries)
    assert stored == [(False, hashlib.sha256(b"glpat-secret").hexdigest())]
    assert "glpat-secret" not in repr(caches.credentials._entries)


async def test_rejections_are_cached_and_job_username_is_part_of_the_key() -> None:
    resolver = CountingResolver(None)
    access = ReadAccess(None, resolver, None, AccessCaches(60))  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await access.authenticate("gitlab-ci-token", "bad")
    assert resolver.calls == 1
    resolver.outcome = ANONYMOUS
    assert await access.authenticate("someone", "bad") is ANONYMOUS  # not the job's cached rejection
    assert resolver.calls == 2
