"""Typed application and request keys of the web interface."""
from __future__ import annotations

from aiohttp import web
from jinja2 import Environment

from registry_shared.domain.access import Principal
from registry_shared.web.contexts import BROKER, MONGO

from .access import WebAccess, WebCaches
from .service import WebCatalog
from .sessions import Session, Sessions
from .settings import WebSettings

__all__ = ["ACCESS", "BROKER", "CACHES", "CATALOG", "MONGO", "PRINCIPAL", "SESSION", "SESSIONS", "SETTINGS",
           "SIGNED_OUT", "TEMPLATES", "USERNAME", "PRE_CSRF", "SET_PRE_CSRF"]
SETTINGS = web.AppKey("settings", WebSettings)
CACHES = web.AppKey("caches", WebCaches)
ACCESS = web.AppKey("access", WebAccess)
CATALOG = web.AppKey("catalog", WebCatalog)
SESSIONS = web.AppKey("sessions", Sessions)
TEMPLATES = web.AppKey("templates", Environment)
# Per request: the visitor, their session (None when signed out), and whether a cookie must be cleared.
PRINCIPAL = web.RequestKey("principal", Principal)
SESSION = web.RequestKey("session", Session)
SIGNED_OUT = web.RequestKey("signed_out", bool)
USERNAME = web.RequestKey("username", str)
# Signed out: the sign-in form's CSRF token (the pre-session cookie's value), and whether to set that cookie.
PRE_CSRF = web.RequestKey("pre_csrf", str)
SET_PRE_CSRF = web.RequestKey("set_pre_csrf", bool)
