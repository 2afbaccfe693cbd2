"""upload-api routes: only E4 (there is no group-level upload)."""
from __future__ import annotations

from aiohttp import web

from . import views


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v4/projects/{project_id}/packages/pypi", views.upload)
    app.router.add_post("/api/v4/projects/{project_id}/packages/pypi/", views.upload)
