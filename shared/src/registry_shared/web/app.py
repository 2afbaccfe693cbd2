"""The common aiohttp application skeleton: correlation ids, GitLab error bodies, one log line per request,
Prometheus metrics, liveness and readiness."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
import urllib3
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pymongo.errors import ConnectionFailure

from ..errors import DomainError
from ..logging import bind_correlation_id

ReadyCheck = Callable[[], Awaitable[bool]]


class InFlight:
    """The requests this process is handling (probes excluded), and whether it is draining for shutdown:
    serve() waits on `idle` after it stops listening, before it closes anything."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()


READY_CHECKS = web.AppKey("ready_checks", dict)
SERVICE_NAME = web.AppKey("service_name", str)
IN_FLIGHT = web.AppKey("in_flight", InFlight)
# Set by a service whose every 4xx must carry its reason in the status line (upload-api, SPEC §4).
REASON_PHRASES = web.AppKey("reason_phrases", bool)
# Per-request storage: the correlation id, and extra fields a view adds to the request's canonical
# log line (never credentials).
CORRELATION_ID = web.RequestKey("correlation_id", str)
LOG_FIELDS = web.RequestKey("log_fields", dict)
CORRELATION_HEADER = "X-Request-Id"
# Failures of a dependency, not of the request: MongoDB's server selection timed out, a connection was
# lost, a failover; S3 (the minio client, the only user of urllib3 here) unreachable after its retries.
DEPENDENCIES: dict[type[BaseException], str] = {ConnectionFailure: "mongodb", urllib3.exceptions.HTTPError: "s3"}
DEPENDENCY_DOWN = tuple(DEPENDENCIES)

HTTP_REQUESTS = Counter("registry_http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "registry_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# Requests being handled now (probes and /metrics excluded): what a graceful shutdown waits for.
HTTP_IN_PROGRESS = Gauge("registry_http_requests_in_progress", "HTTP requests being handled", ["service"])

log = structlog.get_logger()


class RequestMetrics:
    """The labelled children of the request metrics of one service, created once per (method, route,
    status): `labels()` validates and locks on every call, which costs more than the update itself."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.in_progress = HTTP_IN_PROGRESS.labels(service)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                                              HTTP_LATENCY.labels(self.service, method, route))
        children[0].inc()
        children[1].observe(elapsed)


REQUEST_METRICS = web.AppKey("request_metrics", RequestMetrics)


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def json_error(status: int, body: dict[str, str], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="GitLab Packages Registry"'}


def error_response(exc: DomainError, reason_phrases: bool = False) -> web.Response:
    """The one place a DomainError becomes a response; every 401 carries WWW-Authenticate, and an error
    with its own `headers` (416's Content-Range, 503's Retry-After) carries those. With `reason_phrases`
    (the upload route) the status line says why, as pypi.org's does: `400 File is too large`."""
    headers = UNAUTHORIZED_HEADERS if exc.status == 401 else None
    if exc.headers:
        headers = {**(headers or {}), **exc.headers}
    response = json_error(exc.status, exc.body(), headers)
    phrase = exc.reason_phrase() if reason_phrases else None
    if phrase:
        response.set_status(exc.status, status_line_safe(phrase))
    return response


def status_line_safe(text: str, limit: int = 200) -> str:
    """A reason phrase HTTP/1.1 can carry: printable ASCII only (no CR/LF to split the response), bounded."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
    return clean.strip() or "Bad Request"


@web.middleware
async def request_context(request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Correlation id, GitLab-style errors, metrics and one canonical log line per request."""
    incoming = request.headers.get(CORRELATION_HEADER, "")
    correlation_id = incoming if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
    bind_correlation_id(correlation_id)
    request[CORRELATION_ID] = correlation_id
    app = request.app
    metrics, in_flight = app[REQUEST_METRICS], app[IN_FLIGHT]
    started = time.perf_counter()
    status = 500
    counted = not request.path.startswith(("/-/", "/metrics"))
    if counted:
        metrics.in_progress.inc()
        in_flight.enter()
    try:
        try:
            response = await handler(request)
        except DomainError as exc:
            response = error_response(exc, app.get(REASON_PHRASES, False))
        except web.HTTPException as exc:
            if exc.status >= 400 and exc.content_type != "application/json":
                # aiohttp's own 404/405 in GitLab's shape; a 405 keeps its Allow (RFC 9110 requires it).
                allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
                response = json_error(exc.status, {"message": f"{exc.status} {exc.reason}"}, allow)
            else:
                raise
        status = response.status
        response.headers[CORRELATION_HEADER] = correlation_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except DEPENDENCY_DOWN as exc:
        # MongoDB or S3 unreachable: the request was fine and may be retried, so 503 with Retry-After
        # rather than a 500, and a warning rather than a traceback.
        dependency = next(name for kind, name in DEPENDENCIES.items() if isinstance(exc, kind))
        log.warning("dependency_unavailable", method=request.method, path=request.path, dependency=dependency,
                    error=type(exc).__name__)
        status = 503
        what = "the database" if dependency == "mongodb" else "object storage"
        return json_error(503, {"message": f"503 Service Unavailable - {what} is unreachable; retry"},
                          {CORRELATION_HEADER: correlation_id, "Retry-After": "5"})
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        status = 500
        return json_error(500, {"message": "500 Internal Server Error"}, {CORRELATION_HEADER: correlation_id})
    finally:
        elapsed = time.perf_counter() - started
        if counted:
            metrics.in_progress.dec()
            in_flight.leave()
            metrics.observe(request.method, _route_name(request), status, elapsed)
            log.info("http_request", method=request.method, path=request.path, status=status,
                     duration_ms=round(elapsed * 1000, 2), **request.get(LOG_FIELDS, {}))


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if request.app[IN_FLIGHT].draining:  # shutting down: take this replica out of rotation
        return web.json_response({"status": "draining", "checks": {}}, status=503)
    results = {}
    for name, check in request.app[READY_CHECKS].items():
        try:
            results[name] = await check()
        except Exception:  # noqa: BLE001 - any failure means not ready
            results[name] = False
    ok = all(results.values())
    return web.json_response({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)


async def metrics(_request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_base_app(service: str, *, client_max_size: int = 1024**2) -> web.Application:
    """An application with the common middleware and /-/health, /-/ready, /metrics."""
    app = web.Application(middlewares=[request_context], client_max_size=client_max_size)
    app[SERVICE_NAME] = service
    app[READY_CHECKS] = {}
    app[IN_FLIGHT] = InFlight()
    app[REQUEST_METRICS] = RequestMetrics(service)
    app.router.add_get("/-/health", health)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app
