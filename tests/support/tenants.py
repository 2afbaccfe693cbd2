"""Tenants made with registry-admin against a running registry (tests/support/servers.RegistryStack)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tenant:
    group: dict[str, Any]  # the project's group (the last one made)
    project: dict[str, Any]
    token: str  # the user's personal access token, scope `api`
    upload_url: str


def private_project(stack: Any, username: str, path: str, role: str = "developer") -> Tenant:
    """A user with `role` on a new private project at `path` (its groups made private too), and a token."""
    admin = stack.admin
    admin("user", "create", "--username", username)
    parts = path.split("/")
    group: dict[str, Any] = {}
    for depth in range(1, len(parts)):
        group = admin("group", "create", "--path", "/".join(parts[:depth]), "--visibility", "private")
    project = admin("project", "create", "--path", path, "--visibility", "private")
    admin("member", "add", "--user", username, "--project", path, "--role", role)
    token = admin("token", "create", "--user", username, "--scopes", "api")["token"]
    return Tenant(group, project, token, f"{stack.base_url}/api/v4/projects/{project['id']}/packages/pypi")
