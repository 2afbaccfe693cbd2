"""HTTP edge of the upload: read the form, call the use case, map the outcome to GitLab's responses."""
from __future__ import annotations

import structlog
from aiohttp import web
from prometheus_client import Counter

from registry_shared.errors import DomainError
from registry_shared.web.app import CORRELATION_ID, LOG_FIELDS
from registry_shared.web.basic_auth import basic_credentials
from registry_shared.web.request_info import client_ip

from .adapters.form import ClientDisconnected, PartContent, open_form
from .service import UploadRequest, UploadResult, UploadService

UPLOAD_SERVICE = web.AppKey("upload_service", UploadService)
UPLOADS = Counter("registry_uploads_total", "Uploads by outcome", ["outcome"])
DRAIN_LIMIT = 64 * 1024 * 1024

log = structlog.get_logger()


async def upload(request: web.Request) -> web.Response:
    """E4 `POST /api/v4/projects/:id/packages/pypi`."""
    try:
        return await _upload(request)
    except ClientDisconnected:
        # Routine (a cancelled twine, a dropped network): nothing was kept and nobody reads the answer.
        UPLOADS.labels("client_disconnected").inc()
        log.info("upload_client_disconnected")
        raise


async def _upload(request: web.Request) -> web.Response:
    form = await open_form(request)
    assert form.content is not None  # open_form answers 400 `content is missing` otherwise
    username, password = basic_credentials(request)
    upload_request = UploadRequest(request.match_info["project_id"], username, password, request[CORRELATION_ID],
                                   form.fields, form.content, client_ip(request))
    request[LOG_FIELDS] = {"project": upload_request.project_ref, "filename": form.filename}
    try:
        result = await request.app[UPLOAD_SERVICE].upload(upload_request)
    except ClientDisconnected:
        raise
    except DomainError as exc:
        UPLOADS.labels(f"rejected_{exc.status}").inc()
        if exc.status < 500:
            # Let the client finish sending before it reads our answer; pip/twine treat a reset as a failure.
            await _drain_quietly(form.content)
        raise
    if result is UploadResult.CREATED:
        UPLOADS.labels("created").inc()
        return web.json_response({"message": "201 Created"}, status=201)
    UPLOADS.labels("accepted").inc()
    return web.json_response({"message": "202 Accepted - the file is being processed and appears shortly"},
                             status=202)


async def _drain_quietly(content: PartContent) -> None:
    try:
        await content.drain(DRAIN_LIMIT)
    except Exception:  # noqa: BLE001 - the error being reported matters more than the rest of the body
        pass
