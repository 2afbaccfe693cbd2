"""Handlers of the proxy."""
from __future__ import annotations

from aiohttp import web

from registry_shared.errors import PackageNotFound


async def package_page(request: web.Request) -> web.StreamResponse:
    """An upstream package page rewritten into a registry scope.

    Placeholder: the pull-through cache (fetch PEP 691 JSON from PROXY_UPSTREAM_URL, cache with TTL and
    ETag revalidation, single-flight, serve stale, rewrite file URLs) is the proxy issue's work. Until
    then every name is unknown here.
    """
    raise PackageNotFound()
