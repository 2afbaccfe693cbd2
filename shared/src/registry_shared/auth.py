"""Credential resolution (SPEC §2) and access facts for the pure decisions in domain.access."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from .adapters.tenancy import TenancyRepository
from .domain.access import ANONYMOUS, AccessFacts, Principal, PrincipalKind, RegistryAccess, Role, Visibility
from .domain.tokens import hash_token, hashes_equal
from .errors import Unauthorized

JOB_TOKEN_USERNAME = "gitlab-ci-token"


def _usable(doc: dict[str, Any]) -> bool:
    if doc.get("revoked_at") is not None:
        return False
    expires = doc.get("expires_at")
    if expires is not None:
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            return False
    return True


class CredentialResolver:
    """Turns Basic credentials into a Principal: deploy token, then personal token, then job token."""

    def __init__(self, tenancy: TenancyRepository) -> None:
        self.tenancy = tenancy

    async def resolve(self, username: str | None, password: str | None) -> Principal:
        if not password:
            if username == JOB_TOKEN_USERNAME:
                raise Unauthorized()
            return ANONYMOUS
        digest = hash_token(password)
        mongo = self.tenancy.mongo
        # Looked up together (one round trip's wait, not three); the order of SPEC §2 decides below.
        lookups = [mongo.deploy_tokens.find_one({"token_hash": digest}),
                   mongo.personal_tokens.find_one({"token_hash": digest})]
        if username == JOB_TOKEN_USERNAME:
            lookups.append(mongo.jobs.find_one({"token_hash": digest}))
        deploy, personal, *jobs = await asyncio.gather(*lookups)
        if deploy and hashes_equal(deploy["token_hash"], digest):
            if not _usable(deploy):
                raise Unauthorized()
            return Principal(kind=PrincipalKind.DEPLOY_TOKEN, scopes=frozenset(deploy["scopes"]),
                             credential_id=deploy["_id"], deploy_project_id=deploy.get("project_id"),
                             deploy_group_id=deploy.get("group_id"))
        if personal and hashes_equal(personal["token_hash"], digest):
            return await self._personal(personal)
        if username == JOB_TOKEN_USERNAME:
            job = jobs[0]
            if not job or not hashes_equal(job["token_hash"], digest) or job.get("status") != "running":
                raise Unauthorized()
            user = await self.tenancy.find_user(job["user_id"])
            return Principal(kind=PrincipalKind.JOB, user_id=job["user_id"],
                             admin=bool(user and user.get("admin")), scopes=frozenset({"api"}),
                             credential_id=job["_id"], job_project_id=job["project_id"])
        return ANONYMOUS

    async def personal_token(self, token_id: int) -> Principal:
        """The user of a personal access token named by its id (a web session remembers only that id);
        401 once the token is revoked or expired, or its user is gone."""
        personal = await self.tenancy.mongo.personal_tokens.find_one({"_id": token_id})
        if personal is None:
            raise Unauthorized()
        return await self._personal(personal)

    async def _personal(self, personal: dict[str, Any]) -> Principal:
        """The user a stored personal access token stands for; 401 once it is revoked or expired, or its
        user is gone."""
        if not _usable(personal):
            raise Unauthorized()
        user = await self.tenancy.find_user(personal["user_id"])
        if user is None:
            raise Unauthorized()
        return Principal(kind=PrincipalKind.USER, user_id=user["_id"], admin=bool(user.get("admin")),
                         scopes=frozenset(personal["scopes"]), credential_id=personal["_id"])


class AccessFactsService:
    """Gathers what the pure access decisions need about a caller and a project or group."""

    def __init__(self, tenancy: TenancyRepository) -> None:
        self.tenancy = tenancy

    async def for_project(self, principal: Principal, project: dict[str, Any]) -> AccessFacts:
        settings, role, job_allowed = await asyncio.gather(
            self.tenancy.instance_settings(), self._project_role(principal, project),
            self._job_allowed(principal, project))
        covers = principal.kind is PrincipalKind.DEPLOY_TOKEN and (
            principal.deploy_project_id == project["_id"] or principal.deploy_group_id in project["ancestor_ids"]
        )
        return AccessFacts(
            visibility=Visibility(project["visibility"]),
            registry_access=RegistryAccess(project.get("registry_access", "enabled")),
            role=role,
            deploy_token_covers=covers,
            job_allowed=job_allowed,
            job_own_project=principal.job_project_id == project["_id"],
            allow_guest_to_read_packages=bool(settings["allow_guest_to_read_packages"]),
        )

    async def _project_role(self, principal: Principal, project: dict[str, Any]) -> Role:
        if principal.user_id is not None and principal.kind in (PrincipalKind.USER, PrincipalKind.JOB):
            return await self.tenancy.effective_role(principal.user_id, project)
        return Role.NONE

    async def _job_allowed(self, principal: Principal, project: dict[str, Any]) -> bool:
        if principal.kind is PrincipalKind.JOB and principal.job_project_id is not None:
            return await self.tenancy.job_allowed(principal.job_project_id, project["_id"])
        return False

    async def _group_role(self, principal: Principal, group: dict[str, Any]) -> Role:
        if principal.user_id is not None and principal.kind in (PrincipalKind.USER, PrincipalKind.JOB):
            return await self.tenancy.effective_group_role(principal.user_id, group)
        return Role.NONE

    async def for_group(self, principal: Principal, group: dict[str, Any]) -> AccessFacts:
        settings, role = await asyncio.gather(self.tenancy.instance_settings(), self._group_role(principal, group))
        covers = principal.kind is PrincipalKind.DEPLOY_TOKEN and (
            principal.deploy_group_id == group["_id"] or principal.deploy_group_id in group["ancestor_ids"]
        )
        return AccessFacts(
            visibility=Visibility(group["visibility"]),
            role=role,
            deploy_token_covers=covers,
            job_allowed=principal.kind is PrincipalKind.JOB,
            allow_guest_to_read_packages=bool(settings["allow_guest_to_read_packages"]),
        )
