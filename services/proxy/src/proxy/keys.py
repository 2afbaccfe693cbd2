"""Typed application keys shared by the factory and the views."""
from aiohttp import web

from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore

from .service import FileService, PageService
from .settings import ProxySettings

SETTINGS = web.AppKey("settings", ProxySettings)
MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("object_store", ObjectStore)
PAGES = web.AppKey("pages", PageService)
FILES = web.AppKey("files", FileService)
