"""URL table (SPEC §11). Everything outside /api/v4 reaches this service through the gateway; a group's or
project's full path may hold slashes, so it is matched up to its `/-/` segment."""
from __future__ import annotations

from importlib import resources

from aiohttp import web

from . import views

PATH = r"{path:[^-][^?#]*?}"  # a full path: never starts with `-` (the `/-/...` routes are this site's own)
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def setup_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/", views.landing)
    router.add_get("/-/search", views.search)
    router.add_get("/-/sign_in", views.sign_in_form)
    router.add_post("/-/sign_in", views.sign_in)
    router.add_get("/-/sign_out", views.sign_out_form)
    router.add_post("/-/sign_out", views.sign_out)
    router.add_get("/-/static/{name}", static)
    router.add_get(f"/{PATH}/-/packages", views.packages)
    router.add_get(f"/{PATH}/-/packages/" + r"{package_id:\d{1,12}}", views.package)
    router.add_post(f"/{PATH}/-/packages/" + r"{package_id:\d{1,12}}/{action:[a-z_]{1,32}}", views.action)


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("registry_web") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


STATIC = _load_static()


async def static(request: web.Request) -> web.Response:
    found = STATIC.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    return web.Response(body=body, content_type=content_type, headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
