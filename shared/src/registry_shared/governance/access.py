"""Who may manage a project's or group's governance settings (protection rules, hooks, audit events,
cleanup policy): maintainers and above with an `api` token (instance admins count as owners)."""
from __future__ import annotations

from ..domain.access import PAT_SCOPES, AccessFacts, Principal, PrincipalKind, Role, can_see
from ..errors import Forbidden, NotFound, Unauthorized


def can_manage(p: Principal, f: AccessFacts) -> bool:
    if p.kind is not PrincipalKind.USER or "api" not in p.scopes:
        return False
    return p.admin or f.role >= Role.MAINTAINER


def authorize_manage(p: Principal, f: AccessFacts) -> None:
    """SPEC §3.1's order with maintainer as the bar: 401 anonymous, 404 invisible, 403 below."""
    if p.anonymous:
        raise Unauthorized()
    if not can_see(p, f):
        raise NotFound()
    if not can_manage(p, f):
        raise Forbidden()


def authorize_admin(p: Principal) -> None:
    """Instance-wide governance reads (`GET /api/v4/audit_events`): instance admins only."""
    if p.anonymous:
        raise Unauthorized()
    if not (p.admin and p.kind is PrincipalKind.USER and p.scopes & PAT_SCOPES):
        raise Forbidden()
