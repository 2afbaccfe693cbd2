"""`GET|PUT /api/v4/projects/:id/packages/cleanup_policy` and `POST .../cleanup_policy/run?dry_run=` (SPEC §10)."""
from __future__ import annotations

from aiohttp import web

from registry_shared.errors import ParameterInvalid

from . import governance_api as api
from .keys import CLEANUP

POLICY = "/api/v4/projects/{id}/packages/cleanup_policy"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(POLICY, show_policy)
    router.add_put(POLICY, put_policy)
    router.add_post(POLICY + "/run", run_policy)


async def show_policy(request: web.Request) -> web.Response:
    project, _p, _f = await api.managed_scope(request, "project")
    policy = await request.app[CLEANUP].policy(int(project["_id"]))
    return web.json_response(policy.to_json())


async def put_policy(request: web.Request) -> web.Response:
    project, _p, _f = await api.managed_scope(request, "project")
    policy = await request.app[CLEANUP].put_policy(int(project["_id"]), await api.read_fields(request))
    return web.json_response(policy.to_json())


async def run_policy(request: web.Request) -> web.Response:
    raw = request.query.get("dry_run", "true").lower()
    if raw not in ("true", "false"):
        raise ParameterInvalid("dry_run")
    dry_run = raw == "true"
    project, principal, _f = await api.managed_scope(request, "project")
    who = api.who(request, principal)
    deleted = await request.app[CLEANUP].run(project, dry_run=dry_run, actor=who.actor, ip_address=who.ip_address,
                                             correlation_id=who.correlation_id)
    return web.json_response({"dry_run": dry_run, "deleted": [
        {"package_id": p.id, "name": p.shown_name, "version": p.shown_version} for p in deleted]})
