"""Prometheus metrics of the proxy (request counters and latencies live in the shared middleware)."""
from prometheus_client import Counter, Histogram

# kind: page | file | metadata | size (a HEAD for a file's length). result: hit (served from the cache),
# miss (fetched), revalidated (upstream said 304), stale (upstream failed, an older copy was served),
# negative (a cached upstream 404).
CACHE = Counter("registry_proxy_cache_total", "Proxy cache lookups", ["kind", "result"])
UPSTREAM_LATENCY = Histogram(
    "registry_proxy_upstream_seconds", "Upstream latency (pages: whole body; files: until the headers)", ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPSTREAM_ERRORS = Counter("registry_proxy_upstream_errors_total", "Failed upstream requests", ["kind", "reason"])
