"""HTTP responses of the read path: simple pages, files, core metadata, and their cache headers."""
from __future__ import annotations

from contextlib import aclosing
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy

from registry_shared.logging import get_logger
from registry_shared.records.files import StoredFile

from .conditional import ByteRange, etag_matches
from .pages import CachedPage
from .service import ReadService

log = get_logger()
SIMPLE_CACHE = "max-age=0, must-revalidate"
FILE_CACHE = "max-age=31536000, immutable"
# The gateway's half of send-file (deploy/k8s/gateway/nginx.conf.tmpl): it sets SEND_FILE_TYPE on the requests
# it proxies here (overwriting the client's), and answers SEND_FILE_LOCATION by fetching OBJECT_URL from S3.
SEND_FILE_TYPE = "X-Sendfile-Type"
ACCEL_REDIRECT = "X-Accel-Redirect"
SEND_FILE_LOCATION = "/-/send-object"
OBJECT_URL, OBJECT_HOST, OBJECT_RANGE = "X-Object-Url", "X-Object-Host", "X-Object-Range"


def _cache_control(policy: str, public: bool) -> str:
    # Pages of scopes anonymous callers cannot read must not be kept by shared caches.
    return policy if public else f"private, {policy}"


def simple_response(request: web.Request, page: CachedPage, public: bool) -> web.Response:
    not_modified, full = _page_headers(page, public)
    if etag_matches(request.headers.get("If-None-Match"), page.etag):
        return web.Response(status=304, headers=CIMultiDict(not_modified))
    return web.Response(body=page.body, headers=CIMultiDict(full))


def _page_headers(page: CachedPage, public: bool) -> tuple[CIMultiDictProxy[str], CIMultiDictProxy[str]]:
    """(304 headers, 200 headers) of a cached page: built on its first request, copied on the next ones."""
    found = page.headers.get(public)
    if found is None:
        headers = CIMultiDict({hdrs.ETAG: page.etag, hdrs.VARY: "Accept",
                               hdrs.CACHE_CONTROL: _cache_control(SIMPLE_CACHE, public)})
        not_modified = CIMultiDictProxy(headers.copy())
        headers[hdrs.CONTENT_TYPE] = page.content_type
        found = page.headers[public] = (not_modified, CIMultiDictProxy(headers))
    return found


def file_headers(sha256: str, filename: str, public: bool) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "ETag": f'"{sha256}"',
        "Cache-Control": _cache_control(FILE_CACHE, public),
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Accept-Ranges": "bytes",
    }


async def stream_file(request: web.Request, service: ReadService, file: StoredFile,
                      byte_range: ByteRange | None, headers: dict[str, str]) -> web.StreamResponse:
    """Send the file (or one range of it) from S3 chunk by chunk; HEAD never touches S3."""
    size = file.size
    status, offset, length = 200, 0, size
    if byte_range is not None:
        status, offset, length = 206, byte_range.start, byte_range.length
        headers["Content-Range"] = byte_range.content_range(size)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = length
    if request.method == "HEAD" or length == 0:
        await response.prepare(request)
        return response
    chunks = await service.open_file(file, offset, length)
    try:
        async with aclosing(chunks):  # type: ignore[type-var]
            await response.prepare(request)
            async for chunk in chunks:
                await response.write(chunk)
    except ConnectionResetError:
        log.info("download_aborted", file_id=file.id, sent_from=offset)
        return response
    await response.write_eof()
    return response


def gateway_can_send(request: web.Request) -> bool:
    """The request came through a gateway that fetches objects from S3 itself (GitLab Workhorse's send-url)."""
    return request.headers.get(SEND_FILE_TYPE) == ACCEL_REDIRECT


def gateway_send(url: str, byte_range: ByteRange | None, headers: dict[str, str]) -> web.Response:
    """Hand the download to the gateway: it streams `url` (presigned, on the store's internal endpoint) from
    S3 to the client with `headers`, which it takes from this answer, and S3's own headers hidden. The
    range was checked here (416) against the file's size; S3 answers the 206."""
    parts = urlsplit(url)
    send = {**headers, ACCEL_REDIRECT: SEND_FILE_LOCATION, OBJECT_URL: f"{parts.path}?{parts.query}",
            OBJECT_HOST: parts.netloc}
    if byte_range is not None:
        send[OBJECT_RANGE] = f"bytes={byte_range.start}-{byte_range.end}"
    return web.Response(headers=send)


def metadata_response(request: web.Request, data: bytes, digest: str, public: bool) -> web.Response:
    headers = {"ETag": f'"{digest}"', "Cache-Control": _cache_control(FILE_CACHE, public)}
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return web.Response(body=data, headers=headers)
