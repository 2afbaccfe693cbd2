"""Handlers of E1-E3m (projects) and E7-E9m (groups). Each runs SPEC §3.1's order: scope, credentials,
permission, then the route. Errors are raised as DomainErrors; the shared middleware renders them."""
from __future__ import annotations

import functools

from aiohttp import web

from registry_shared.domain.simple import choose_content_type
from registry_shared.errors import PackageNotFound
from registry_shared.web.app import LOG_FIELDS
from registry_shared.web.basic_auth import basic_credentials

from .access import ReadScope
from .conditional import etag_matches, requested_range
from .errors import NotAcceptable
from .keys import ACCESS, DOWNLOADS, SERVICE
from .metrics import FILES_SENT_BY_GATEWAY, FILES_STREAMED
from .responses import file_headers, gateway_can_send, gateway_send, metadata_response, simple_response, stream_file

METADATA_SUFFIX = ".metadata"


async def read_scope(request: web.Request, kind: str) -> ReadScope:
    access = request.app[ACCESS]
    doc = await access.find_scope(kind, request.match_info["id"])  # 404 before credentials
    fields: dict[str, object] = {"scope": f"{kind}:{doc['_id']}"}
    request[LOG_FIELDS] = fields
    principal = await access.authenticate(*basic_credentials(request))
    fields.update(principal.log_fields())  # ids and kinds only, never the secret
    return await access.authorize(principal, kind, doc)


# Clients send a handful of distinct Accept headers (pip's, a browser's, none): parse each once.
_content_type = functools.lru_cache(maxsize=256)(choose_content_type)


def negotiated_type(request: web.Request) -> str:
    content_type = _content_type(request.headers.get("Accept"))
    if content_type is None:
        raise NotAcceptable()
    return content_type


async def index(request: web.Request, kind: str) -> web.StreamResponse:
    scope = await read_scope(request, kind)
    page = await request.app[SERVICE].index_page(scope, negotiated_type(request))
    return simple_response(request, page, scope.public)


async def package(request: web.Request, kind: str) -> web.StreamResponse:
    scope = await read_scope(request, kind)
    service = request.app[SERVICE]
    name = request.match_info["name"]
    page = await service.package_page(scope, name, negotiated_type(request))
    if page is None:
        return await service.forward(scope, name, request)
    return simple_response(request, page, scope.public)


async def download(request: web.Request, kind: str) -> web.StreamResponse:
    scope = await read_scope(request, kind)
    service = request.app[SERVICE]
    sha256, filename = request.match_info["sha256"], request.match_info["filename"]
    try:
        file = await service.find_file(scope, sha256, filename)
    except PackageNotFound:  # not a local file: perhaps one of a proxied page (SPEC §6)
        return await service.forward_file(scope, sha256, filename, request)
    await service.check_file(scope, file)
    headers = file_headers(file.sha256, file.filename, scope.public)
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    if service.redirect_files:
        if request.method == "GET":
            request.app[DOWNLOADS].count(file)
        return web.Response(status=302, headers={"Location": await service.file_url(file)})
    byte_range = requested_range(request.headers.get("Range"), request.headers.get("If-Range"),
                                 file.size, headers["ETag"])
    if request.method == "HEAD":  # never touches S3
        return await stream_file(request, service, file, byte_range, headers)
    if byte_range is None or byte_range.start == 0:  # a resumed download was counted when it began
        request.app[DOWNLOADS].count(file)
    if gateway_can_send(request) and service.gateway_sends(file):
        request[LOG_FIELDS]["sent_by"] = "gateway"  # the bytes never pass through this process
        FILES_SENT_BY_GATEWAY.inc()
        return gateway_send(await service.gateway_url(file), byte_range, headers)
    request[LOG_FIELDS]["sent_by"] = "index-api"
    FILES_STREAMED.inc()
    return await stream_file(request, service, file, byte_range, headers)


async def core_metadata(request: web.Request, kind: str) -> web.StreamResponse:
    scope = await read_scope(request, kind)
    service = request.app[SERVICE]
    sha256, filename = request.match_info["sha256"], request.match_info["filename"].removesuffix(METADATA_SUFFIX)
    try:
        file = await service.find_file(scope, sha256, filename)
    except PackageNotFound:
        return await service.forward_metadata(scope, sha256, filename, request)
    await service.check_file(scope, file)
    data, digest = await service.core_metadata(file)
    return metadata_response(request, data, digest, scope.public)
