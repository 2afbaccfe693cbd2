"""Package protection rules (SPEC §10, GitLab's): pure rules over a rule list and the caller's facts."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..domain.access import AccessFacts, Principal, PrincipalKind, Role
from ..errors import Forbidden

PROTECTED = "403 Forbidden - Package protected."
PUSH_LEVELS = ("maintainer", "owner", "admin")
DELETE_LEVELS = ("owner", "admin")
_ROLE_OF = {"maintainer": Role.MAINTAINER, "owner": Role.OWNER}


@dataclass(frozen=True)
class ProtectionRule:
    id: int
    project_id: int
    package_name_pattern: str
    package_type: str = "pypi"
    minimum_access_level_for_push: str | None = None
    minimum_access_level_for_delete: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ProtectionRule:
        return cls(id=int(doc["_id"]), project_id=int(doc["project_id"]),
                   package_name_pattern=str(doc["package_name_pattern"]),
                   package_type=doc.get("package_type") or "pypi",
                   minimum_access_level_for_push=doc.get("minimum_access_level_for_push"),
                   minimum_access_level_for_delete=doc.get("minimum_access_level_for_delete"))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "project_id": self.project_id, "package_name_pattern": self.package_name_pattern,
                "package_type": self.package_type,
                "minimum_access_level_for_push": self.minimum_access_level_for_push,
                "minimum_access_level_for_delete": self.minimum_access_level_for_delete}

    def matches(self, name: str) -> bool:
        """`*` is the only wildcard; matched case-insensitively against the name as uploaded."""
        pattern = "".join(".*" if c == "*" else re.escape(c) for c in self.package_name_pattern.lower())
        return re.fullmatch(pattern, name.lower()) is not None


def _below(level: str, principal: Principal, facts: AccessFacts) -> bool:
    """Whether the caller is below `level` (deploy tokens always are; instance admins never)."""
    if principal.admin and principal.kind in (PrincipalKind.USER, PrincipalKind.JOB):
        return False
    if principal.kind is PrincipalKind.DEPLOY_TOKEN:
        return True
    if level == "admin":
        return True
    return facts.role < _ROLE_OF[level]


def check_push(rules: list[ProtectionRule], name: str, principal: Principal, facts: AccessFacts) -> None:
    """403 `Package protected.` when a rule matching `name` sets a push level the caller is below."""
    for rule in rules:
        level = rule.minimum_access_level_for_push
        if level and rule.matches(name) and _below(level, principal, facts):
            raise Forbidden(PROTECTED)


def check_delete(rules: list[ProtectionRule], name: str, principal: Principal, facts: AccessFacts) -> None:
    for rule in rules:
        level = rule.minimum_access_level_for_delete
        if level and rule.matches(name) and _below(level, principal, facts):
            raise Forbidden(PROTECTED)


def delete_protected(rules: list[ProtectionRule], name: str) -> bool:
    """Whether any rule protects `name` from deletion (the cleanup policy never deletes those)."""
    return any(r.minimum_access_level_for_delete and r.matches(name) for r in rules)


__all__ = ["DELETE_LEVELS", "PROTECTED", "PUSH_LEVELS", "ProtectionRule", "check_delete", "check_push",
           "delete_protected"]
