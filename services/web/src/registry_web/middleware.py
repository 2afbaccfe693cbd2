"""Cross-cutting concerns of every page: who the visitor is (their session), CSRF on every POST, and errors
as HTML pages rather than the API's JSON."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from registry_shared.domain.access import ANONYMOUS
from registry_shared.errors import DomainError
from registry_shared.web.app import LOG_FIELDS

from .keys import ACCESS, PRINCIPAL, SESSION, SESSIONS, SIGNED_OUT, USERNAME
from .rendering import render, secure_cookies
from .sessions import CSRF_FIELD, SESSION_COOKIE, tokens_match

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Probes, metrics and the stylesheet need no visitor.
_NO_VISITOR = ("/-/health", "/-/ready", "/metrics", "/-/static/")


class CsrfRefused(DomainError):
    status = 403

    def default_message(self) -> str:
        return "403 Forbidden - this form has expired or did not come from this site; reload the page and retry"


@web.middleware
async def visitor(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The session of the cookie, if it still holds: not expired, and its token neither revoked nor expired
    (asked on every request, through caches that revocation events drop)."""
    if request.path.startswith(_NO_VISITOR):
        return await handler(request)
    request[PRINCIPAL] = ANONYMOUS
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        sessions = request.app[SESSIONS]
        session = await sessions.find(cookie)
        principal = await request.app[ACCESS].token_principal(session.token_id) if session else None
        if session is not None and principal is not None:
            request[SESSION] = session
            request[PRINCIPAL] = principal
            names = await request.app[ACCESS].usernames([session.user_id])
            request[USERNAME] = names.get(session.user_id, "")
            request[LOG_FIELDS] = principal.log_fields()  # ids only, never the session id or a token
        else:
            if session is not None:  # its token was revoked or expired: the session ends with it
                await sessions.end(session)
            request[SIGNED_OUT] = True
    response = await handler(request)
    if request.get(SIGNED_OUT):
        response.del_cookie(SESSION_COOKIE, path="/", secure=secure_cookies(request), httponly=True,
                            samesite="Lax")
    return response


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST of a signed-in visitor carries the session's CSRF token; sign-in checks its own."""
    # A POST to no route is its 404 or 405 (twine pointed at a wrong URL learns that), not a CSRF refusal.
    routed = request.match_info.http_exception is None
    if request.method == "POST" and routed and request.path != "/-/sign_in":
        session = request.get(SESSION)
        form = await request.post()
        given = form.get(CSRF_FIELD)
        if session is None or not isinstance(given, str) or not tokens_match(session.csrf, given):
            raise CsrfRefused()
    return await handler(request)


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Typed errors and unknown routes as HTML pages (probes and metrics keep their JSON)."""
    if request.path.startswith(_NO_VISITOR):
        return await handler(request)
    try:
        return await handler(request)
    except DomainError as exc:
        if exc.status == 401:  # a page needing a session (a form of one that ended): sign in again
            return web.Response(status=303, headers={"Location": f"/-/sign_in?next={quote(request.path)}"})
        return error_page(request, exc.status, _reason(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            page = error_page(request, exc.status, exc.reason)
            if "Allow" in exc.headers:  # a 405 says what is allowed (RFC 9110)
                page.headers["Allow"] = exc.headers["Allow"]
            return page
        raise


def _reason(exc: DomainError) -> str:
    message = str(exc.body().get("message") or exc.body().get("error") or "")
    return message.split(" - ", 1)[1] if " - " in message else message.split(" ", 1)[-1]


def error_page(request: web.Request, status: int, reason: str) -> web.Response:
    titles = {403: "Forbidden", 404: "Page not found", 405: "Method not allowed", 503: "Try again shortly"}
    return render(request, "error.html", status=status, title=titles.get(status, reason or "Error"),
                  code=status, reason=reason)
