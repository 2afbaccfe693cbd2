"""Typed application keys shared by the factory, the views and the event consumer."""
from aiohttp import web

from registry_shared.adapters.amqp import Broker
from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.s3 import ObjectStore

from .access import AccessCaches, ReadAccess
from .cache import PageCache
from .management import PackageManagement
from .service import Forwarder, ReadService
from .settings import IndexSettings

SETTINGS = web.AppKey("settings", IndexSettings)
MONGO = web.AppKey("mongo", Mongo)
STORE = web.AppKey("object_store", ObjectStore)
BROKER = web.AppKey("broker", Broker)
PAGE_CACHE = web.AppKey("page_cache", PageCache)
ACCESS_CACHES = web.AppKey("access_caches", AccessCaches)
ACCESS = web.AppKey("access", ReadAccess)
SERVICE = web.AppKey("service", ReadService)
FORWARDER = web.AppKey("forwarder", Forwarder)  # names a scope lacks: proxy_client.ProxyForwarder or a 302
MANAGEMENT = web.AppKey("management", PackageManagement)
