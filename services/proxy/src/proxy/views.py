"""Handlers of the proxy. Errors are raised as DomainErrors; the shared middleware renders them."""
from __future__ import annotations

import re

from aiohttp import web

from registry_shared.domain.names import is_valid_name, normalize_name
from registry_shared.domain.simple import choose_content_type
from registry_shared.errors import BadRequest, PackageNotFound
from registry_shared.logging import get_logger
from registry_shared.web.app import LOG_FIELDS

from .files import METADATA_SUFFIX
from .keys import FILES, PAGES
from .pages import parse_scope

log = get_logger()
CACHE_HEADER = "X-Proxy-Cache"  # hit | miss | revalidated | stale | negative: for logs and tests
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


async def page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    scope = parse_scope(request.query.get("scope"))
    if scope is None:
        raise BadRequest("scope is invalid")
    if not is_valid_name(name):
        raise PackageNotFound()
    content_type = choose_content_type(request.headers.get("Accept"))
    if content_type is None:
        raise web.HTTPNotAcceptable()
    request[LOG_FIELDS] = fields = {"name": normalize_name(name), "scope": f"{scope.kind}:{scope.id}"}
    rendered, result = await request.app[PAGES].render(normalize_name(name), scope, content_type)
    fields["cache"] = result
    return web.Response(body=rendered.body, headers={
        "Content-Type": rendered.content_type, "ETag": rendered.etag, "Vary": "Accept", CACHE_HEADER: result})


async def lookup(request: web.Request) -> web.Response:
    file = await request.app[FILES].describe(*_file_ref(request))
    return web.json_response(file.describe())


async def download(request: web.Request) -> web.StreamResponse:
    files = request.app[FILES]
    file = await files.describe(*_file_ref(request))
    headers = {"Content-Type": "application/octet-stream", "ETag": f'"{file.file.sha256}"'}
    if request.method == "HEAD":  # never starts an upstream download
        response = web.StreamResponse(headers=headers)
        if file.size is not None:
            response.content_length = file.size
        return response
    served = await files.download(file, _range(request.headers.get("Range")))
    request[LOG_FIELDS] = {"file": file.key, "cache": served.result}
    status = 200
    if served.byte_range is not None:
        first, last = served.byte_range
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{served.size}"
    headers[CACHE_HEADER] = served.result
    response = web.StreamResponse(status=status, headers=headers)
    if served.byte_range is not None:
        response.content_length = served.byte_range[1] - served.byte_range[0] + 1
    elif served.size is not None:
        response.content_length = served.size
    try:
        await response.prepare(request)
        async for chunk in served.chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        log.info("download_aborted", file=file.key)
    except Exception as exc:  # noqa: BLE001 - after the headers, a refused transfer can only be cut short
        log.warning("download_refused", file=file.key, error=type(exc).__name__)
        abort(request)
    finally:
        served.release()
        aclose = getattr(served.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return response


async def core_metadata(request: web.Request) -> web.Response:
    sha256, filename = _file_ref(request)
    files = request.app[FILES]
    file = await files.describe(sha256, filename.removesuffix(METADATA_SUFFIX))
    data, digest = await files.core_metadata(file)
    return web.Response(body=data, headers={"Content-Type": "text/plain; charset=utf-8", "ETag": f'"{digest}"'})


def abort(request: web.Request) -> None:
    """Close the connection without finishing the body: the client sees a broken transfer, never a complete
    file (aiohttp's later write_eof then fails quietly on the closed transport)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def _file_ref(request: web.Request) -> tuple[str, str]:
    sha256 = request.match_info["sha256"]
    if not _SHA256_RE.match(sha256):
        raise PackageNotFound()
    return sha256.lower(), request.match_info["filename"]


def _range(header: str | None) -> tuple[int, int | None] | None:
    """index-api sends only `bytes=first-last` or `bytes=first-` (it validated the client's Range)."""
    match = _RANGE_RE.match(header or "")
    if match is None:
        return None
    first, last = int(match.group(1)), match.group(2)
    return (first, int(last) if last else None) if not last or int(last) >= first else None
