"""URL table of the proxy (cluster-internal; index-api is its only client).

    GET /pages/{name}?scope=project:3        the upstream page of `name`, its file URLs in that scope
    GET /lookup/{sha256}/{filename}          JSON: which proxied page lists this file (index-api's
                                             dependency-confusion check needs the name before any byte)
    GET /files/{sha256}/{filename}           the file: from S3, or from upstream while storing it
    GET /files/{sha256}/{filename}.metadata  its core metadata (PEP 658)
"""
from aiohttp import web

from . import views


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/pages/{name}", views.page)
    app.router.add_get("/lookup/{sha256}/{filename}", views.lookup)
    # Registered before the plain file route so `.metadata` requests reach core_metadata.
    app.router.add_get(r"/files/{sha256}/{filename:[^/]+\.metadata}", views.core_metadata)
    app.router.add_get("/files/{sha256}/{filename}", views.download)
