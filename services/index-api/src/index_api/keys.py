"""Typed application keys shared by the factory, the views and the event consumer."""
from aiohttp import web

from registry_shared.governance.service import Governance
from registry_shared.governance.yank import YankService
from registry_shared.replicas import Announcer
from registry_shared.web.contexts import BROKER, MONGO, STORE

from .access import AccessCaches, ReadAccess
from .cache import PageCache
from .cleanup import CleanupService
from .downloads import DownloadCounter
from .management import PackageManagement
from .policy import ReadPolicy
from .policy_management import PolicyManagement
from .service import Forwarder, ReadService
from .settings import IndexSettings

__all__ = ["ACCESS", "ACCESS_CACHES", "ANNOUNCER", "BROKER", "CLEANUP", "DOWNLOADS", "FORWARDER", "GOVERNANCE",
           "MANAGEMENT", "MONGO", "PAGE_CACHE", "POLICY", "POLICY_ADMIN", "SERVICE", "SETTINGS", "STORE", "YANK"]
SETTINGS = web.AppKey("settings", IndexSettings)
PAGE_CACHE = web.AppKey("page_cache", PageCache)
ACCESS_CACHES = web.AppKey("access_caches", AccessCaches)
ACCESS = web.AppKey("access", ReadAccess)
SERVICE = web.AppKey("service", ReadService)
FORWARDER = web.AppKey("forwarder", Forwarder)  # names a scope lacks: proxy_client.ProxyForwarder or a 302
MANAGEMENT = web.AppKey("management", PackageManagement)
ANNOUNCER = web.AppKey("announcer", Announcer)  # publishes; an index.changed waits for every replica
POLICY = web.AppKey("policy", ReadPolicy)  # supply-chain policy on the read path (SPEC §9)
POLICY_ADMIN = web.AppKey("policy_admin", PolicyManagement)  # the policy management API's use cases
GOVERNANCE = web.AppKey("governance", Governance)  # protection rules, audit records, hooks (SPEC §10)
YANK = web.AppKey("yank", YankService)
CLEANUP = web.AppKey("cleanup", CleanupService)
DOWNLOADS = web.AppKey("downloads", DownloadCounter)  # counts downloads, reported in batches
