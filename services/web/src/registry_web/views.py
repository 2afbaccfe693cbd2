"""Page handlers: turn requests into use-case arguments and results into pages."""
from __future__ import annotations

from aiohttp import web

from registry_shared.domain.access import PrincipalKind
from registry_shared.errors import Unauthorized
from registry_shared.web.app import CORRELATION_ID
from registry_shared.web.request_info import client_ip

from .actions import ACTIONS, STATUSES
from .keys import ACCESS, CATALOG, PRE_CSRF, PRINCIPAL, SESSION, SESSIONS, SET_PRE_CSRF, SIGNED_OUT
from .rendering import render, secure_cookies
from .service import Who
from .sessions import CSRF_FIELD, PRE_SESSION_COOKIE, SESSION_COOKIE, new_secret, tokens_match

NOTICES = {"deleted": "The version was deleted.", "signed_in": "You are signed in.",
           "signed_out": "You are signed out.", "yanked": "The version was yanked.",
           "unyanked": "The version is no longer yanked.", "status": "The status was set."}


def redirect(location: str) -> web.Response:
    """303 See Other, returned (not raised) so the middlewares still set or clear cookies on it."""
    return web.Response(status=303, headers={"Location": location})


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _query(request: web.Request) -> str:
    return request.query.get("q", "")[:200]


def _notice(request: web.Request) -> str:
    return NOTICES.get(request.query.get("notice", ""), "")


async def landing(request: web.Request) -> web.Response:
    readable = await request.app[CATALOG].landing(request[PRINCIPAL])
    return render(request, "index.html", title="Packages", readable=readable, q="", notice=_notice(request))


async def search(request: web.Request) -> web.Response:
    query = _query(request)
    rows, page = await request.app[CATALOG].search(request[PRINCIPAL], query, _page_number(request))
    return render(request, "search.html", title=f"Search: {query}" if query else "Search", q=query, rows=rows,
                  page=page, base=request.path, show_project=True)


async def packages(request: web.Request) -> web.Response:
    path = request.match_info["path"]
    query = _query(request)
    kind, scope, rows, page = await request.app[CATALOG].listing(request[PRINCIPAL], path, query,
                                                                 _page_number(request))
    return render(request, "packages.html", title=f"Packages of {scope['path']}", kind=kind, scope=scope,
                  rows=rows, page=page, q=query, base=request.path, show_project=kind == "group",
                  notice=_notice(request))


async def package(request: web.Request) -> web.Response:
    view = await request.app[CATALOG].package(request[PRINCIPAL], request.match_info["path"],
                                              int(request.match_info["package_id"]))
    return render(request, "package.html", title=f"{view.name} {view.version}", view=view, actions=ACTIONS,
                  statuses=STATUSES, notice=_notice(request))


async def action(request: web.Request) -> web.StreamResponse:
    """A maintainer's form (its CSRF token was checked by the middleware): one handler per action."""
    handler = ACTIONS.get(request.match_info["action"])
    if handler is None:
        raise web.HTTPNotFound()
    if request.get(SESSION) is None:
        raise Unauthorized()
    who = Who(request[PRINCIPAL], client_ip(request), request[CORRELATION_ID])
    location = await handler.run(request.app[CATALOG], who, request.match_info["path"],
                                 int(request.match_info["package_id"]), await request.post())
    return redirect(location)


# -- signing in and out --------------------------------------------------------------------------

def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a full URL)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and len(target) < 2000:
        return target
    return "/"


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is not None:
        return redirect("/")
    return _sign_in_page(request, "", 200)


def _sign_in_page(request: web.Request, error: str, status: int) -> web.Response:
    token = request.cookies.get(PRE_SESSION_COOKIE, "")
    if not 20 <= len(token) <= 100:
        token = new_secret()
    request[PRE_CSRF] = token
    request[SET_PRE_CSRF] = True
    return render(request, "sign_in.html", status=status, title="Sign in", error=error,
                  next=_next(request.query.get("next")))


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not tokens_match(request.cookies.get(PRE_SESSION_COOKIE), given):
        return _sign_in_page(request, "The form expired. Please paste your token again.", 403)
    secret = form.get("token")
    secret = secret.strip() if isinstance(secret, str) else ""
    try:
        principal = await request.app[ACCESS].resolver.resolve(None, secret) if secret else None
    except Unauthorized:  # revoked or expired
        principal = None
    if principal is None or principal.kind is not PrincipalKind.USER or principal.credential_id is None \
            or principal.user_id is None:
        return _sign_in_page(request, "That is not a valid personal access token.", 400)
    expiry = await request.app[CATALOG].catalog.token_expiry(principal.credential_id)
    session_id, session = await request.app[SESSIONS].open(principal.credential_id, principal.user_id, expiry)
    target = _next(str(form.get("next") or "/"))
    response = redirect(target)
    ttl = max(1, int((session.expires_at - session.created_at).total_seconds()))
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Lax", path="/", max_age=ttl,
                        secure=secure_cookies(request))
    response.del_cookie(PRE_SESSION_COOKIE, path="/-/sign_in")
    request[SIGNED_OUT] = False  # a stale cookie's removal must not undo the new one
    return response


async def sign_out_form(request: web.Request) -> web.StreamResponse:
    if request.get(SESSION) is None:
        return redirect("/")
    return render(request, "sign_out.html", title="Sign out")


async def sign_out(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        await request.app[SESSIONS].end(session)
    request[SIGNED_OUT] = True
    return redirect("/?notice=signed_out")


__all__ = ["action", "landing", "package", "packages", "search", "sign_in", "sign_in_form",
           "sign_out", "sign_out_form"]
