"""Handlers of SPEC §9's management API: the policy of a project (maintainer and above), a group (owner
and above) or the instance (administrators), and a project's package status (maintainer and above).

Permission follows the upload order (404 unknown scope, then 401 / 404 / 403); the body is checked after.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from registry_shared.domain.access import Principal, Role, authorize_instance_admin, authorize_manage
from registry_shared.domain.names import is_valid_name, normalize_name
from registry_shared.errors import BadRequest, ParameterInvalid
from registry_shared.policy.document import parse_policy
from registry_shared.policy.status import PackageStatus, parse_status
from registry_shared.web.app import CORRELATION_ID, LOG_FIELDS
from registry_shared.web.basic_auth import api_credentials

from .keys import ACCESS, POLICY_ADMIN

POLICY_PATHS = {"project": "/api/v4/projects/{id}/packages/pypi/policy",
                "group": "/api/v4/groups/{id}/-/packages/pypi/policy"}
INSTANCE_POLICY = "/api/v4/application/packages/pypi/policy"
STATUS_PATH = "/api/v4/projects/{id}/packages/pypi/status/{name}"
MINIMUM = {"project": Role.MAINTAINER, "group": Role.OWNER}


def add_routes(router: web.UrlDispatcher) -> None:
    for kind, path in POLICY_PATHS.items():
        router.add_get(path, _scoped(get_policy, kind))
        router.add_put(path, _scoped(put_policy, kind))
    router.add_get(INSTANCE_POLICY, get_instance_policy)
    router.add_put(INSTANCE_POLICY, put_instance_policy)
    router.add_put(STATUS_PATH, put_status)


def _scoped(view: Callable[[web.Request, str], Awaitable[web.Response]],
            kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await view(request, kind)

    handler.__name__ = f"{kind}_{view.__name__}"
    return handler


async def get_policy(request: web.Request, kind: str) -> web.Response:
    doc, _principal = await _manager(request, kind, write=False)
    return web.json_response((await request.app[POLICY_ADMIN].get(kind, doc["_id"])).to_json())


async def put_policy(request: web.Request, kind: str) -> web.Response:
    doc, principal = await _manager(request, kind, write=True)
    policy = parse_policy(await _json_body(request))
    saved = await request.app[POLICY_ADMIN].replace(kind, doc["_id"], policy, principal.log_fields(),
                                                    client_ip(request), request.get(CORRELATION_ID))
    return web.json_response(saved.to_json())


async def get_instance_policy(request: web.Request) -> web.Response:
    await _admin(request, write=False)
    return web.json_response((await request.app[POLICY_ADMIN].get("instance", None)).to_json())


async def put_instance_policy(request: web.Request) -> web.Response:
    principal = await _admin(request, write=True)
    policy = parse_policy(await _json_body(request))
    saved = await request.app[POLICY_ADMIN].replace("instance", None, policy, principal.log_fields(),
                                                    client_ip(request), request.get(CORRELATION_ID))
    return web.json_response(saved.to_json())


async def put_status(request: web.Request) -> web.Response:
    project, principal = await _manager(request, "project", write=True)
    name = request.match_info["name"]
    if not is_valid_name(name):
        raise ParameterInvalid("name")
    status, reason = parse_status(await _json_body(request))
    saved = await request.app[POLICY_ADMIN].set_status(
        PackageStatus(project["_id"], normalize_name(name), status, reason), principal.log_fields(),
        client_ip(request), request.get(CORRELATION_ID))
    return web.json_response(saved.to_json())


async def _manager(request: web.Request, kind: str, write: bool) -> tuple[dict[str, Any], Principal]:
    access = request.app[ACCESS]
    doc = await access.find_scope(kind, request.match_info["id"])  # 404 before credentials
    principal = await _principal(request, f"{kind}:{doc['_id']}")
    facts = await (access.project_facts(principal, doc) if kind == "project" else access.group_facts(principal, doc))
    authorize_manage(principal, facts, MINIMUM[kind], write)
    return doc, principal


async def _admin(request: web.Request, write: bool) -> Principal:
    principal = await _principal(request, "instance")
    authorize_instance_admin(principal, write)
    return principal


async def _principal(request: web.Request, scope: str) -> Principal:
    fields: dict[str, object] = {"scope": scope}
    request[LOG_FIELDS] = fields
    principal = await request.app[ACCESS].authenticate(*api_credentials(request))
    fields.update(principal.log_fields())  # ids and kinds only, never the secret
    return principal


def client_ip(request: web.Request) -> str:
    """The caller's address for the audit trail: the gateway appends the address it saw to
    X-Forwarded-For (anything before it is what the client claimed), else the connection's peer."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last or request.remote or ""


async def _json_body(request: web.Request) -> object:
    try:
        return await request.json()
    except ValueError as exc:
        raise BadRequest("body is not valid JSON") from exc
