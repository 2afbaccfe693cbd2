"""Typed application keys shared by the factory and the views."""
from aiohttp import web

from registry_shared.web.contexts import MONGO, STORE

from .service import FileService, PageService
from .settings import ProxySettings

__all__ = ["FILES", "MONGO", "PAGES", "SETTINGS", "STORE"]
SETTINGS = web.AppKey("settings", ProxySettings)
PAGES = web.AppKey("pages", PageService)
FILES = web.AppKey("files", FileService)
