"""Errors only the read path raises, and the headers some of them must carry."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from registry_shared.errors import DomainError
from registry_shared.web.app import error_response


class NotAcceptable(DomainError):
    """The client's Accept header allows neither HTML nor PEP 691 JSON."""

    status = 406

    def default_message(self) -> str:
        return "406 Not Acceptable"


class RangeNotSatisfiable(DomainError):
    """A Range that starts past the end of the file; RFC 9110 wants `Content-Range: bytes */size`."""

    status = 416

    def __init__(self, size: int) -> None:
        super().__init__()
        self.headers = {"Content-Range": f"bytes */{size}"}

    def default_message(self) -> str:
        return "416 Range Not Satisfiable"


@web.middleware
async def error_headers(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Render a DomainError that carries headers (the shared middleware renders the others).

    The body still comes from the shared `error_response`; only the extra headers are added here.
    """
    try:
        return await handler(request)
    except DomainError as exc:
        headers = getattr(exc, "headers", None)
        if not headers:
            raise
        response = error_response(exc)
        response.headers.update(headers)
        return response
