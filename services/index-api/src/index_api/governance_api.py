"""Handlers of the governance API (SPEC §10): yank, protection rules, audit events, hooks, cleanup policy.

Every route first finds its scope (404), then authenticates, then authorizes per SPEC §3.1's order
(maintainer and above; yank also a write deploy token, as deletes). Registered before the Packages API's
routes, so `/packages/protection/...` and `/packages/cleanup_policy` are not taken for a package id.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from registry_shared.domain.access import AccessFacts, Principal, authorize_delete
from registry_shared.domain.ids import parse_id
from registry_shared.errors import BadRequest, ParameterInvalid
from registry_shared.governance.access import authorize_admin, authorize_manage
from registry_shared.governance.audit import EVENT_NAMES, record_json
from registry_shared.governance.service import AuditQuery, Who
from registry_shared.governance.webhooks import hook_json
from registry_shared.web.app import CORRELATION_ID, LOG_FIELDS
from registry_shared.web.basic_auth import api_credentials
from registry_shared.web.request_info import client_ip

from .keys import ACCESS, GOVERNANCE, SETTINGS, YANK
from .listing import parse_page
from .presenters import pagination_headers

PROJECT = "/api/v4/projects/{id}"
GROUP = "/api/v4/groups/{id}"
RULES = PROJECT + "/packages/protection/rules"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(PROJECT + "/packages/{package_id}/yank", yank)
    router.add_delete(PROJECT + "/packages/{package_id}/yank", unyank)
    router.add_get(RULES, list_rules)
    router.add_post(RULES, create_rule)
    router.add_patch(RULES + "/{rule_id}", update_rule)
    router.add_delete(RULES + "/{rule_id}", delete_rule)
    router.add_get("/api/v4/audit_events", instance_audit_events)
    for kind, root in (("project", PROJECT), ("group", GROUP)):
        router.add_get(root + "/audit_events", _scoped(audit_events, kind))
        router.add_get(root + "/hooks", _scoped(list_hooks, kind))
        router.add_post(root + "/hooks", _scoped(create_hook, kind))
        router.add_delete(root + "/hooks/{hook_id}", _scoped(delete_hook, kind))


def _scoped(view: Any, kind: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await view(request, kind)  # type: ignore[no-any-return]  # every view returns a response

    handler.__name__ = f"{kind}_{view.__name__}"
    return handler


# -- yank (PEP 592) ------------------------------------------------------------------------------

async def yank(request: web.Request) -> web.Response:
    package_id = id_param(request, "package_id")
    project, principal, _facts = await managed_scope(request, "project", deletes=True)
    body = await read_fields(request)
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ParameterInvalid("reason")
    result = await request.app[YANK].yank(project, package_id, reason, **_who_kw(request, principal))
    return web.json_response(_yank_json(result.package.id, result.yanked), status=201)


async def unyank(request: web.Request) -> web.Response:
    package_id = id_param(request, "package_id")
    project, principal, _facts = await managed_scope(request, "project", deletes=True)
    await request.app[YANK].unyank(project, package_id, **_who_kw(request, principal))
    return web.Response(status=204)


def _yank_json(package_id: int, yanked: bool | str) -> dict[str, Any]:
    return {"id": package_id, "yanked": bool(yanked), "yanked_reason": yanked if isinstance(yanked, str) else None}


# -- protection rules ----------------------------------------------------------------------------

async def list_rules(request: web.Request) -> web.Response:
    project, _p, _f = await managed_scope(request, "project")
    rules = await request.app[GOVERNANCE].rules(project)
    return web.json_response([r.to_json() for r in rules])


async def create_rule(request: web.Request) -> web.Response:
    project, principal, _f = await managed_scope(request, "project")
    rule = await request.app[GOVERNANCE].create_rule(project, await read_fields(request), who(request, principal))
    return web.json_response(rule.to_json(), status=201)


async def update_rule(request: web.Request) -> web.Response:
    rule_id = id_param(request, "rule_id")
    project, principal, _f = await managed_scope(request, "project")
    rule = await request.app[GOVERNANCE].update_rule(project, rule_id, await read_fields(request),
                                                     who(request, principal))
    return web.json_response(rule.to_json())


async def delete_rule(request: web.Request) -> web.Response:
    rule_id = id_param(request, "rule_id")
    project, principal, _f = await managed_scope(request, "project")
    await request.app[GOVERNANCE].delete_rule(project, rule_id, who(request, principal))
    return web.Response(status=204)


# -- audit events --------------------------------------------------------------------------------

async def audit_events(request: web.Request, kind: str) -> web.Response:
    query = parse_audit_query(request.query)
    doc, _p, _f = await managed_scope(request, kind)
    return await _audit_page(request, f"{kind}:{doc['_id']}", query)


async def instance_audit_events(request: web.Request) -> web.Response:
    query = parse_audit_query(request.query)
    request[LOG_FIELDS] = fields = {}
    principal = await request.app[ACCESS].authenticate(*api_credentials(request))
    fields.update(principal.log_fields())
    authorize_admin(principal)
    return await _audit_page(request, None, query)


async def _audit_page(request: web.Request, scope: str | None, query: AuditQuery) -> web.Response:
    records, total = await request.app[GOVERNANCE].audit(scope, query)
    page = parse_page(request.query)
    url = request.app[SETTINGS].registry_external_url + request.rel_url.raw_path
    headers = pagination_headers(url, dict(request.query), page, total)
    return web.json_response([record_json(r) for r in records], headers=headers)


def parse_audit_query(params: Any) -> AuditQuery:
    page = parse_page(params)
    event_name = params.get("event_name") or None
    if event_name is not None and event_name not in EVENT_NAMES:
        raise ParameterInvalid("event_name")
    return AuditQuery(_time(params, "created_after"), _time(params, "created_before"), event_name,
                      page.offset, page.per_page)


def _time(params: Any, name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParameterInvalid(name) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- hooks ---------------------------------------------------------------------------------------

async def list_hooks(request: web.Request, kind: str) -> web.Response:
    doc, _p, _f = await managed_scope(request, kind)
    hooks = await request.app[GOVERNANCE].hooks(f"{kind}:{doc['_id']}")
    return web.json_response([hook_json(h) for h in hooks])


async def create_hook(request: web.Request, kind: str) -> web.Response:
    doc, _p, _f = await managed_scope(request, kind)
    hook = await request.app[GOVERNANCE].create_hook(f"{kind}:{doc['_id']}", await read_fields(request))
    return web.json_response(hook_json(hook), status=201)


async def delete_hook(request: web.Request, kind: str) -> web.Response:
    hook_id = id_param(request, "hook_id")
    doc, _p, _f = await managed_scope(request, kind)
    await request.app[GOVERNANCE].delete_hook(f"{kind}:{doc['_id']}", hook_id)
    return web.Response(status=204)


# -- helpers -------------------------------------------------------------------------------------

async def managed_scope(request: web.Request, kind: str, *, deletes: bool = False
                 ) -> tuple[dict[str, Any], Principal, AccessFacts]:
    """The project or group (404 first), once this caller may manage it: 401 / 404 / 403."""
    access = request.app[ACCESS]
    doc = await access.find_scope(kind, request.match_info["id"])
    fields: dict[str, object] = {"scope": f"{kind}:{doc['_id']}"}
    request[LOG_FIELDS] = fields
    principal = await access.authenticate(*api_credentials(request))
    fields.update(principal.log_fields())
    facts = await (access.project_facts(principal, doc) if kind == "project" else access.group_facts(principal, doc))
    (authorize_delete if deletes else authorize_manage)(principal, facts)
    return doc, principal, facts


def who(request: web.Request, principal: Principal) -> Who:
    return Who(principal.log_fields(), client_ip(request), request[CORRELATION_ID])


def _who_kw(request: web.Request, principal: Principal) -> dict[str, Any]:
    found = who(request, principal)
    return {"actor": found.actor, "ip_address": found.ip_address, "correlation_id": found.correlation_id}


def id_param(request: web.Request, name: str) -> int:
    found = parse_id(request.match_info[name])
    if found is None:
        raise ParameterInvalid(name)
    return found


async def read_fields(request: web.Request) -> dict[str, Any]:
    """A JSON object body, or form fields, or (GitLab's API takes either) the query string."""
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError as exc:
                raise BadRequest("body is not valid JSON") from exc
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            return body
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    return dict(request.query)
