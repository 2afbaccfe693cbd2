"""Who sees what on the web pages (registry_web.access): the API's decisions, and 404 for the rest.
Fakes of our own ports only; the decisions themselves are registry_shared.domain.access."""
from __future__ import annotations

from typing import Any

import pytest

from registry_shared.domain.access import (
    ANONYMOUS,
    AccessFacts,
    Principal,
    PrincipalKind,
    RegistryAccess,
    Role,
    Visibility,
)
from registry_shared.errors import Forbidden, NotFound
from registry_web.access import WebAccess, WebCaches

GROUPS = [
    {"_id": 1, "path": "pub", "visibility": "public", "ancestor_ids": []},
    {"_id": 2, "path": "corp", "visibility": "private", "ancestor_ids": []},
    {"_id": 3, "path": "corp/team", "visibility": "private", "ancestor_ids": [2]},
]
PROJECTS = [
    {"_id": 10, "path": "pub/lib", "visibility": "public", "ancestor_ids": [1]},
    {"_id": 11, "path": "corp/team/app", "visibility": "private", "ancestor_ids": [2, 3]},
    {"_id": 12, "path": "corp/secret", "visibility": "private", "ancestor_ids": [2]},
    {"_id": 13, "path": "corp/open-registry", "visibility": "private", "registry_access": "public",
     "ancestor_ids": [2]},
]
MEMBER = Principal(kind=PrincipalKind.USER, user_id=7, scopes=frozenset({"read_api"}), credential_id=70)
MAINTAINER = Principal(kind=PrincipalKind.USER, user_id=8, scopes=frozenset({"api"}), credential_id=80)
ROLES = {(7, 11): Role.REPORTER, (8, 11): Role.MAINTAINER}  # (user, project) -> role


class FakeCatalog:
    async def all_projects(self) -> list[dict[str, Any]]:
        return PROJECTS

    async def all_groups(self) -> list[dict[str, Any]]:
        return GROUPS

    async def find_by_path(self, kind: str, path: str) -> dict[str, Any] | None:
        docs = PROJECTS if kind == "project" else GROUPS
        return next((d for d in docs if d["path"] == path.lower()), None)


class FakeFacts:
    async def for_project(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        return AccessFacts(visibility=Visibility(project["visibility"]),
                           registry_access=RegistryAccess(project.get("registry_access", "enabled")),
                           role=ROLES.get((principal.user_id or 0, project["_id"]), Role.NONE))

    async def for_group(self, principal: Principal, group: dict[str, Any]) -> AccessFacts:
        return AccessFacts(visibility=Visibility(group["visibility"]))


def access() -> WebAccess:
    return WebAccess(FakeCatalog(), None, FakeFacts(), WebCaches(ttl=5))  # type: ignore[arg-type]


@pytest.mark.parametrize(("principal", "projects", "groups"), [
    (ANONYMOUS, ["pub/lib", "corp/open-registry"], ["pub", "corp"]),
    (MEMBER, ["pub/lib", "corp/team/app", "corp/open-registry"], ["pub", "corp", "corp/team"]),
])
async def test_the_landing_lists_what_the_visitor_may_read(principal: Principal, projects: list[str],
                                                           groups: list[str]) -> None:
    readable = await access().readable(principal)
    assert [p["path"] for p in readable.projects] == projects
    assert [g["path"] for g in readable.groups] == groups


@pytest.mark.parametrize(("principal", "path", "kind", "projects"), [
    (ANONYMOUS, "pub/lib", "project", ["pub/lib"]),
    (ANONYMOUS, "corp", "group", ["corp/open-registry"]),  # a private group shows what may be read under it
    (MEMBER, "corp", "group", ["corp/team/app", "corp/open-registry"]),
    (MEMBER, "CORP/Team", "group", ["corp/team/app"]),  # paths are case-insensitive
])
async def test_a_scope_shows_the_projects_the_visitor_may_read(principal: Principal, path: str, kind: str,
                                                               projects: list[str]) -> None:
    found_kind, _doc, found = await access().scope(principal, path)
    assert (found_kind, [p["path"] for p in found]) == (kind, projects)


@pytest.mark.parametrize(("principal", "path"), [
    (ANONYMOUS, "corp/team/app"), (ANONYMOUS, "corp/team"), (ANONYMOUS, "corp/secret"), (MEMBER, "corp/secret"),
    (ANONYMOUS, "no/such"),
])
async def test_what_the_visitor_may_not_read_is_404_whatever_the_reason(principal: Principal, path: str) -> None:
    with pytest.raises(NotFound):
        await access().scope(principal, path)


async def test_only_a_maintainer_with_an_api_token_gets_the_maintainer_forms() -> None:
    web = access()
    project = PROJECTS[1]
    assert not await web.may_manage(ANONYMOUS, project)
    assert not await web.may_manage(MEMBER, project)
    assert await web.may_manage(MAINTAINER, project)
    with pytest.raises(Forbidden):
        await web.authorize_delete(MEMBER, project)
    with pytest.raises(Forbidden):
        await web.authorize_manage(MEMBER, project)
    assert (await web.authorize_delete(MAINTAINER, project)).role is Role.MAINTAINER  # the facts, for protection
    await web.authorize_manage(MAINTAINER, project)
    read_only = Principal(kind=PrincipalKind.USER, user_id=8, scopes=frozenset({"read_api"}), credential_id=81)
    assert not await web.may_manage(read_only, project)
    with pytest.raises(Forbidden):
        await web.authorize_manage(read_only, project)
