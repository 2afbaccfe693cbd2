"""Prometheus metrics of the read path (the request counters live in the shared middleware)."""
from prometheus_client import Counter

PAGE_CACHE = Counter("registry_index_page_cache_total", "Simple page cache lookups", ["result"])
CACHE_INVALIDATIONS = Counter("registry_index_cache_invalidations_total", "Cache drops by event", ["event"])
