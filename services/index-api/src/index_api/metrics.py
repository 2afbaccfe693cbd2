"""Prometheus metrics of the read path (the request counters live in the shared middleware)."""
from prometheus_client import Counter

PAGE_CACHE = Counter("registry_index_page_cache_total", "Simple page cache lookups", ["result"])
# Made once: `labels()` on every lookup would cost more than the increment.
PAGE_CACHE_HIT, PAGE_CACHE_MISS = PAGE_CACHE.labels("hit"), PAGE_CACHE.labels("miss")
CACHE_INVALIDATIONS = Counter("registry_index_cache_invalidations_total", "Cache drops by event", ["event"])
FILE_SENDS = Counter("registry_index_file_sends_total", "File downloads answered with their bytes, by who sent them",
                    ["by"])
FILES_SENT_BY_GATEWAY, FILES_STREAMED = FILE_SENDS.labels("gateway"), FILE_SENDS.labels("index-api")
# Supply-chain policy (SPEC §9): files left off a rendered page or refused on download, by reason
# (cooldown, cutoff, blocked, quarantined).
POLICY_WITHHELD = Counter("registry_policy_files_withheld_total",
                          "Files withheld by policy from a rendered page or a download, by reason", ["reason"])
