"""Handlers of GitLab's Packages API, PyPI packages only: E10 (list), E11 (show), E12 (files), E13 (delete).

Reads follow SPEC §3.1's read order (scope, credentials, permission); deletes the upload order with
maintainer as the bar (`authorize_delete`). Query parameters are checked first, as GitLab's API does.
"""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from registry_shared.domain.access import Principal, authorize_delete, can_delete
from registry_shared.domain.ids import parse_id
from registry_shared.errors import ParameterInvalid
from registry_shared.web.app import CORRELATION_ID, LOG_FIELDS
from registry_shared.web.basic_auth import api_credentials
from registry_shared.web.request_info import client_ip

from .access import ReadScope
from .keys import ACCESS, GOVERNANCE, MANAGEMENT, SETTINGS
from .listing import PageRequest, parse_list_query, parse_page
from .presenters import package_detail_json, package_file_json, package_json, pagination_headers

PROJECT_PACKAGES = "/api/v4/projects/{id}/packages"
PACKAGE = PROJECT_PACKAGES + "/{package_id}"


def add_routes(router: web.UrlDispatcher) -> None:
    """E10-E13. `{package_id}` takes any segment, so a non-number is GitLab's 400, not a 404."""
    router.add_get(PROJECT_PACKAGES, list_project_packages)  # HEAD is added with every GET
    router.add_get("/api/v4/groups/{id}/packages", list_group_packages)
    router.add_get(PACKAGE, show_package)
    router.add_get(PACKAGE + "/package_files", list_package_files)
    router.add_delete(PACKAGE, delete_package)
    router.add_delete(PACKAGE + "/package_files/{package_file_id}", delete_package_file)


# -- reads -------------------------------------------------------------------------------------

async def list_project_packages(request: web.Request) -> web.Response:
    return await _list(request, "project")


async def list_group_packages(request: web.Request) -> web.Response:
    return await _list(request, "group")


async def _list(request: web.Request, kind: str) -> web.Response:
    query = parse_list_query(request.query, kind)
    scope, principal = await _reader(request, kind)
    listing = await request.app[MANAGEMENT].list_packages(scope, query)
    projects = listing.projects
    deletable = await _deletable(request, principal, [projects[p.project_id] for p in listing.packages])
    base = _base_url(request)
    body = [package_json(p, projects[p.project_id], base, p.project_id in deletable)
            for p in listing.packages]
    return _page_response(request, body, query.page, listing.total)


async def show_package(request: web.Request) -> web.Response:
    package_id = _id_param(request, "package_id")
    scope, principal = await _reader(request, "project")
    detail = await request.app[MANAGEMENT].get_package(scope.doc, package_id)
    deletable = await _deletable(request, principal, [scope.doc])
    return web.json_response(package_detail_json(detail.package, scope.doc, _base_url(request), bool(deletable),
                                                 detail.files, detail.versions))


async def list_package_files(request: web.Request) -> web.Response:
    package_id = _id_param(request, "package_id")
    page = parse_page(request.query)
    scope, _principal = await _reader(request, "project")
    files, total = await request.app[MANAGEMENT].package_files(scope.doc, package_id, page)
    return _page_response(request, [package_file_json(f) for f in files], page, total)


# -- deletes -----------------------------------------------------------------------------------

async def delete_package(request: web.Request) -> web.Response:
    package_id = _id_param(request, "package_id")
    project, principal = await _deleter(request, package_id)
    await request.app[MANAGEMENT].delete_package(project, package_id, request[CORRELATION_ID],
                                                 actor=principal.log_fields(), ip_address=client_ip(request))
    return web.Response(status=204)


async def delete_package_file(request: web.Request) -> web.Response:
    package_id = _id_param(request, "package_id")
    file_id = _id_param(request, "package_file_id")
    project, principal = await _deleter(request, package_id)
    await request.app[MANAGEMENT].delete_file(project, package_id, file_id, request[CORRELATION_ID],
                                              actor=principal.log_fields(), ip_address=client_ip(request))
    return web.Response(status=204)


# -- helpers -----------------------------------------------------------------------------------

async def _reader(request: web.Request, kind: str) -> tuple[ReadScope, Principal]:
    """404 for an unknown scope before credentials, then 401 / 403 / 404 per SPEC §3.1."""
    access = request.app[ACCESS]
    doc = await access.find_scope(kind, request.match_info["id"])
    principal = await _principal(request, kind, doc)
    return await access.authorize(principal, kind, doc), principal


async def _deleter(request: web.Request, package_id: int) -> tuple[dict[str, Any], Principal]:
    """The project, once the caller may delete its packages: 404 unknown, then 401 / 404 / 403, then 403
    `Package protected.` where a protection rule's delete level is above the caller (SPEC §10)."""
    access = request.app[ACCESS]
    project = await access.find_scope("project", request.match_info["id"])
    principal = await _principal(request, "project", project)
    facts = await access.project_facts(principal, project)
    authorize_delete(principal, facts)
    await request.app[GOVERNANCE].check_delete(project, package_id, principal, facts)
    return project, principal


async def _principal(request: web.Request, kind: str, doc: dict[str, Any]) -> Principal:
    fields: dict[str, object] = {"scope": f"{kind}:{doc['_id']}"}
    request[LOG_FIELDS] = fields
    principal = await request.app[ACCESS].authenticate(*api_credentials(request))
    fields.update(principal.log_fields())  # ids and kinds only, never the secret
    return principal


async def _deletable(request: web.Request, principal: Principal, projects: list[dict[str, Any]]) -> set[int]:
    """Projects among `projects` whose packages this caller may delete (GitLab's `delete_api_path` link)."""
    if principal.anonymous:
        return set()
    unique = {int(p["_id"]): p for p in projects}
    access = request.app[ACCESS]
    facts = await asyncio.gather(*(access.project_facts(principal, p) for p in unique.values()))
    return {pid for pid, f in zip(unique, facts, strict=True) if can_delete(principal, f)}


def _id_param(request: web.Request, name: str) -> int:
    found = parse_id(request.match_info[name])
    if found is None:
        raise ParameterInvalid(name)
    return found


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS].registry_external_url


def _page_response(request: web.Request, body: list[dict[str, Any]], page: PageRequest, total: int) -> web.Response:
    # Links are built on the configured external URL, never the request's Host header.
    url = _base_url(request) + request.rel_url.raw_path
    headers = pagination_headers(url, dict(request.query), page, total)
    return web.json_response(body, headers=headers)
