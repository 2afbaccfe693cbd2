"""Who may do what (SPEC §3.1), as pure functions over facts gathered by the caller.

The I/O side (credential lookup, membership, settings) collects a `Principal` and an `AccessFacts`
for one resource; these functions decide. They are the only place the rules live.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum

from ..errors import Forbidden, NotFound, Unauthorized


class Visibility(str, Enum):
    PUBLIC = "public"
    INTERNAL = "internal"
    PRIVATE = "private"


class RegistryAccess(str, Enum):
    DISABLED = "disabled"
    ENABLED = "enabled"
    PUBLIC = "public"


class Role(IntEnum):
    NONE = 0
    GUEST = 10
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50


class PrincipalKind(str, Enum):
    ANONYMOUS = "anonymous"
    USER = "user"  # personal access token
    DEPLOY_TOKEN = "deploy_token"
    JOB = "job"  # CI job token


PAT_SCOPES = frozenset({"api", "read_api"})
DEPLOY_SCOPES = frozenset({"read_package_registry", "write_package_registry"})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. `user_id` is set for users and jobs (the job's user)."""

    kind: PrincipalKind = PrincipalKind.ANONYMOUS
    user_id: int | None = None
    admin: bool = False
    scopes: frozenset[str] = frozenset()
    credential_id: int | None = None  # token, deploy token or job id: logged, never the secret
    job_project_id: int | None = None
    deploy_project_id: int | None = None
    deploy_group_id: int | None = None

    @property
    def anonymous(self) -> bool:
        return self.kind is PrincipalKind.ANONYMOUS

    def log_fields(self) -> dict[str, object]:
        return {"principal": self.kind.value, "user_id": self.user_id, "credential_id": self.credential_id}


ANONYMOUS = Principal()


@dataclass(frozen=True)
class AccessFacts:
    """What the decision needs to know about one project (or group) and this caller."""

    visibility: Visibility
    registry_access: RegistryAccess = RegistryAccess.ENABLED
    role: Role = Role.NONE  # effective role of the principal's user, inherited down the group tree
    deploy_token_covers: bool = False  # the principal's deploy token belongs to this project or an ancestor
    job_allowed: bool = False  # a job principal's project is this project or on its allowlist
    job_own_project: bool = False  # a job principal runs in this very project
    allow_guest_to_read_packages: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def _signed_in(p: Principal, f: AccessFacts) -> bool:
    if p.kind is PrincipalKind.USER:
        return True
    return p.kind is PrincipalKind.JOB and f.job_allowed


def _effective_role(p: Principal, f: AccessFacts) -> Role:
    if p.kind is PrincipalKind.USER or (p.kind is PrincipalKind.JOB and f.job_allowed):
        return Role.OWNER if p.admin else f.role
    return Role.NONE


def can_see(p: Principal, f: AccessFacts) -> bool:
    """Whether the caller may know the project or group exists."""
    if f.visibility is Visibility.PUBLIC:
        return True
    if p.kind is PrincipalKind.DEPLOY_TOKEN:
        return f.deploy_token_covers
    if f.visibility is Visibility.INTERNAL:
        return _signed_in(p, f)
    return _effective_role(p, f) >= Role.GUEST


def can_read_packages(p: Principal, f: AccessFacts) -> bool:
    """SPEC §3.1: who may read packages of a project (or group).

    A deploy token reads its own project or group with either package-registry scope; anywhere else it
    counts as anyone, so it reads public packages like an anonymous caller would (never a 403 there).
    """
    if f.registry_access is RegistryAccess.DISABLED:
        return False
    if p.kind is PrincipalKind.JOB and not f.job_allowed:
        return False
    if p.kind is PrincipalKind.USER and not (p.scopes & PAT_SCOPES):
        return False
    if f.registry_access is RegistryAccess.PUBLIC:
        return True
    if p.kind is PrincipalKind.DEPLOY_TOKEN and f.deploy_token_covers and p.scopes & DEPLOY_SCOPES:
        return True
    if f.visibility is Visibility.PUBLIC:
        return True
    if p.kind is PrincipalKind.DEPLOY_TOKEN:
        # Outside its own project or group a deploy token is nobody in particular, not a signed-in user
        # (GitLab: it has no user): it reads exactly what an anonymous caller reads, so public packages only.
        return False
    if f.visibility is Visibility.INTERNAL and _signed_in(p, f):
        return True
    minimum = Role.GUEST if f.allow_guest_to_read_packages else Role.REPORTER
    return _effective_role(p, f) >= minimum


def can_upload(p: Principal, f: AccessFacts) -> bool:
    """Developers and above with an `api` token, write deploy tokens, job tokens allowed in the project."""
    if f.registry_access is RegistryAccess.DISABLED:
        return False
    if p.kind is PrincipalKind.DEPLOY_TOKEN:
        return f.deploy_token_covers and "write_package_registry" in p.scopes
    if p.kind is PrincipalKind.JOB:
        return f.job_allowed
    if p.kind is PrincipalKind.USER:
        return "api" in p.scopes and _effective_role(p, f) >= Role.DEVELOPER
    return False


def can_delete(p: Principal, f: AccessFacts) -> bool:
    """Maintainers and above with an `api` token, or a write deploy token."""
    if p.kind is PrincipalKind.DEPLOY_TOKEN:
        return f.deploy_token_covers and "write_package_registry" in p.scopes
    if p.kind is PrincipalKind.USER:
        return "api" in p.scopes and _effective_role(p, f) >= Role.MAINTAINER
    return False


def authorize_read(p: Principal, f: AccessFacts) -> None:
    """Read routes, after the resource was found: 403 if visible, 401 if anonymous, else 404."""
    if can_read_packages(p, f):
        return
    if can_see(p, f):
        raise Forbidden()
    if p.anonymous:
        raise Unauthorized()
    raise NotFound()


def authorize_upload(p: Principal, f: AccessFacts) -> None:
    """Upload, after the project was found: 401 anonymous, 404 invisible, 403 without upload right."""
    if p.anonymous:
        raise Unauthorized()
    if not can_see(p, f):
        raise NotFound()
    if not can_upload(p, f):
        raise Forbidden()


def authorize_delete(p: Principal, f: AccessFacts) -> None:
    """Package deletion follows the upload order, with maintainer as the bar."""
    if p.anonymous:
        raise Unauthorized()
    if not can_see(p, f):
        raise NotFound()
    if not can_delete(p, f):
        raise Forbidden()


def can_manage(p: Principal, f: AccessFacts, minimum: Role, write: bool) -> bool:
    """Settings of a project or group (SPEC §9 policy, package status): users with an `api` token (reading:
    `read_api` too) whose role is at least `minimum`; instance admins everywhere."""
    if p.kind is not PrincipalKind.USER:
        return False
    if not (p.scopes & ({"api"} if write else PAT_SCOPES)):
        return False
    return _effective_role(p, f) >= minimum


def authorize_manage(p: Principal, f: AccessFacts, minimum: Role, write: bool) -> None:
    """The upload order with `minimum` as the bar: 401 anonymous, 404 invisible, 403 below it."""
    if p.anonymous:
        raise Unauthorized()
    if not can_see(p, f):
        raise NotFound()
    if not can_manage(p, f, minimum, write):
        raise Forbidden()


def authorize_instance_admin(p: Principal, write: bool) -> None:
    """Instance-wide settings: administrators with an `api` token (reading: `read_api` too)."""
    if p.anonymous:
        raise Unauthorized()
    if p.kind is not PrincipalKind.USER or not p.admin or not (p.scopes & ({"api"} if write else PAT_SCOPES)):
        raise Forbidden()
