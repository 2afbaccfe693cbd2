"""Templates (Jinja2, autoescaped everywhere) and the headers every page carries."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from .keys import PRE_CSRF, PRINCIPAL, SESSION, SET_PRE_CSRF, SETTINGS, TEMPLATES, USERNAME
from .sessions import CSRF_FIELD, PRE_SESSION_COOKIE

# No inline script or style anywhere: the README's HTML is sanitised already, and this forbids what might
# slip through. README images may come from any https host, as on pypi.org.
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


def templates() -> Environment:
    env = Environment(loader=PackageLoader("registry_web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["size"] = human_size
    env.filters["date"] = short_date
    return env


def human_size(value: int) -> str:
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def short_date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session = request.get(SESSION)
    principal = request.get(PRINCIPAL)
    csrf = session.csrf if session is not None else request.get(PRE_CSRF, "")
    page = request.app[TEMPLATES].get_template(template).render(
        signed_in=session is not None and principal is not None and not principal.anonymous,
        username=request.get(USERNAME, ""), csrf_field=CSRF_FIELD, csrf_token=csrf,
        external_url=request.app[SETTINGS].registry_external_url, path=request.path, **context)
    response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8",
                            headers=SECURITY_HEADERS)
    # Pages differ per visitor: never stored by a shared cache, nor kept after sign-out.
    response.headers["Cache-Control"] = "private, no-store"
    if request.get(SET_PRE_CSRF):
        response.set_cookie(PRE_SESSION_COOKIE, csrf, httponly=True, samesite="Strict", path="/-/sign_in",
                            secure=secure_cookies(request), max_age=3600)
    return response


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies when the visitor reaches us over https (directly, or through a proxy that says so)."""
    external = request.app[SETTINGS].registry_external_url
    return (request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"
            or external.startswith("https://"))
