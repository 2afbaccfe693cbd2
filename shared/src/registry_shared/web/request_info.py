"""Facts about the caller that records keep (audit `ip_address`)."""
from __future__ import annotations

from aiohttp import web


def client_ip(request: web.Request) -> str:
    """The client's address: the gateway appends it to X-Forwarded-For (the last entry is the one it saw);
    a request that reached the service directly has only its peer."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded:
        return forwarded.split(",")[-1].strip()[:64]
    return request.remote or ""
