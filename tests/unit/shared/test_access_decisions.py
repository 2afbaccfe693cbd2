"""SPEC §3.1 as tables: visibility x caller x operation -> status."""
from __future__ import annotations

import pytest

from registry_shared.domain.access import (
    ANONYMOUS,
    AccessFacts,
    Principal,
    PrincipalKind,
    RegistryAccess,
    Role,
    Visibility,
    authorize_read,
    authorize_upload,
)
from registry_shared.errors import DomainError

PUBLIC, INTERNAL, PRIVATE = Visibility.PUBLIC, Visibility.INTERNAL, Visibility.PRIVATE


def user(scopes: str = "api", admin: bool = False) -> Principal:
    return Principal(kind=PrincipalKind.USER, user_id=1, admin=admin, scopes=frozenset(scopes.split(",")))


def status(fn, principal: Principal, facts: AccessFacts) -> int:
    try:
        fn(principal, facts)
    except DomainError as exc:
        return exc.status
    return 200


READ_TABLE = [
    # visibility, principal, role, expected read status
    (PUBLIC, ANONYMOUS, Role.NONE, 200),
    (INTERNAL, ANONYMOUS, Role.NONE, 401),
    (PRIVATE, ANONYMOUS, Role.NONE, 401),
    (INTERNAL, user(), Role.NONE, 200),
    (PRIVATE, user(), Role.NONE, 404),
    (PRIVATE, user(), Role.GUEST, 403),
    (PRIVATE, user(), Role.REPORTER, 200),
    (PRIVATE, user("read_api"), Role.DEVELOPER, 200),
    (PRIVATE, user(admin=True), Role.NONE, 200),
]


@pytest.mark.parametrize(("visibility", "principal", "role", "expected"), READ_TABLE)
def test_read(visibility: Visibility, principal: Principal, role: Role, expected: int) -> None:
    assert status(authorize_read, principal, AccessFacts(visibility=visibility, role=role)) == expected


def test_guest_reads_when_instance_allows() -> None:
    facts = AccessFacts(visibility=PRIVATE, role=Role.GUEST, allow_guest_to_read_packages=True)
    assert status(authorize_read, user(), facts) == 200


@pytest.mark.parametrize(("principal", "expected"), [(ANONYMOUS, 200), (user(), 200)])
def test_registry_public_on_private_project(principal: Principal, expected: int) -> None:
    facts = AccessFacts(visibility=PRIVATE, registry_access=RegistryAccess.PUBLIC)
    assert status(authorize_read, principal, facts) == expected


@pytest.mark.parametrize(("principal", "role", "expected"),
                         [(ANONYMOUS, Role.NONE, 403), (user(admin=True), Role.OWNER, 403)])
def test_registry_disabled_nobody_reads(principal: Principal, role: Role, expected: int) -> None:
    facts = AccessFacts(visibility=PUBLIC, registry_access=RegistryAccess.DISABLED, role=role)
    assert status(authorize_read, principal, facts) == expected


UPLOAD_TABLE = [
    (PUBLIC, ANONYMOUS, Role.NONE, 401),
    (PRIVATE, ANONYMOUS, Role.NONE, 401),
    (PRIVATE, user(), Role.NONE, 404),
    (PUBLIC, user(), Role.NONE, 403),
    (PRIVATE, user(), Role.REPORTER, 403),
    (PRIVATE, user(), Role.DEVELOPER, 201),
    (PRIVATE, user("read_api"), Role.MAINTAINER, 403),
    (INTERNAL, user(), Role.NONE, 403),
    (PRIVATE, user(admin=True), Role.NONE, 201),
]


@pytest.mark.parametrize(("visibility", "principal", "role", "expected"), UPLOAD_TABLE)
def test_upload(visibility: Visibility, principal: Principal, role: Role, expected: int) -> None:
    got = status(authorize_upload, principal, AccessFacts(visibility=visibility, role=role))
    assert got == (200 if expected == 201 else expected)


@pytest.mark.parametrize(
    ("scopes", "covers", "read", "upload"),
    [("read_package_registry", True, 200, 403), ("write_package_registry", True, 200, 200),
     ("read_package_registry,write_package_registry", False, 404, 404)],
)
def test_deploy_tokens_on_private(scopes: str, covers: bool, read: int, upload: int) -> None:
    p = Principal(kind=PrincipalKind.DEPLOY_TOKEN, scopes=frozenset(scopes.split(",")), deploy_project_id=1)
    facts = AccessFacts(visibility=PRIVATE, deploy_token_covers=covers)
    assert status(authorize_read, p, facts) == read
    assert status(authorize_upload, p, facts) == upload


@pytest.mark.parametrize(("allowed", "visibility", "read", "upload"),
                         [(True, PRIVATE, 200, 200), (False, PRIVATE, 404, 404), (False, PUBLIC, 403, 403)])
def test_job_tokens(allowed: bool, visibility: Visibility, read: int, upload: int) -> None:
    p = Principal(kind=PrincipalKind.JOB, user_id=1, scopes=frozenset({"api"}), job_project_id=9)
    facts = AccessFacts(visibility=visibility, role=Role.DEVELOPER, job_allowed=allowed)
    assert status(authorize_read, p, facts) == read
    assert status(authorize_upload, p, facts) == upload


@pytest.mark.parametrize(
    ("visibility", "registry", "scopes", "read", "upload"),
    [(PUBLIC, RegistryAccess.ENABLED, "read_package_registry", 200, 403),
     (PUBLIC, RegistryAccess.ENABLED, "write_package_registry", 200, 403),
     (INTERNAL, RegistryAccess.ENABLED, "read_package_registry", 404, 404),
     (PRIVATE, RegistryAccess.ENABLED, "write_package_registry", 404, 404),
     (PRIVATE, RegistryAccess.PUBLIC, "read_package_registry", 200, 404),
     (PUBLIC, RegistryAccess.DISABLED, "read_package_registry", 403, 403)],
)
def test_deploy_token_elsewhere_reads_like_anyone(visibility: Visibility, registry: RegistryAccess, scopes: str,
                                                  read: int, upload: int) -> None:
    """SPEC §3.1: a deploy token of another project or group counts as anyone: public packages, no 403,
    and it is no signed-in user on an internal project (a 404 there, as for any caller who cannot see it)."""
    p = Principal(kind=PrincipalKind.DEPLOY_TOKEN, scopes=frozenset({scopes}), deploy_project_id=7)
    facts = AccessFacts(visibility=visibility, registry_access=registry, deploy_token_covers=False)
    assert status(authorize_read, p, facts) == read
    assert status(authorize_upload, p, facts) == upload
