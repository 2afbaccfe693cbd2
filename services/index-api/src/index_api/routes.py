"""URL table. `{id}` is a number or a URL-encoded path: aiohttp matches `%2F` inside a segment and
decodes it in `match_info` (`acme%2Fapi` -> `acme/api`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from . import cleanup_api, governance_api, packages_api, policy_api, views

ROOTS = {"project": "/api/v4/projects/{id}/packages/pypi", "group": "/api/v4/groups/{id}/-/packages/pypi"}
ScopedView = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _for(view: ScopedView, kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await view(request, kind)

    handler.__name__ = f"{kind}_{view.__name__}"
    return handler


def setup_routes(app: web.Application) -> None:
    for kind, root in ROOTS.items():
        # aiohttp tries the routes of a prefix in this order: the most requested first (pip asks for
        # `/simple/{name}/`, then files), as a miss costs a regex match per route tried before.
        table = [
            ("/simple/{name}/", views.package), ("/simple/{name}", views.package),
            # Registered before the plain file route so `.metadata` requests reach E3m/E9m.
            (r"/files/{sha256}/{filename:[^/]+\.metadata}", views.core_metadata),
            ("/files/{sha256}/{filename}", views.download),
            ("/simple/", views.index), ("/simple", views.index),
        ]
        for suffix, view in table:
            app.router.add_get(root + suffix, _for(view, kind))  # HEAD is added with every GET
    governance_api.add_routes(app.router)
    cleanup_api.add_routes(app.router)  # SPEC §10; before E10-E13, whose `{package_id}` takes any segment
    packages_api.add_routes(app.router)  # E10-E13, GitLab's Packages API
    policy_api.add_routes(app.router)  # SPEC §9 policy and package status
