"""URL table of the proxy (cluster-internal; index-api is its only client)."""
from aiohttp import web

from . import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/simple/{name}", views.package_page)
    app.router.add_get("/simple/{name}/", views.package_page)
