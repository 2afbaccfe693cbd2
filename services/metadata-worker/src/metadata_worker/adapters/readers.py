"""The worker's blocking readers over stored objects live in `registry_shared.adapters.readers` (the proxy
reads the wheels it caches with them too)."""
from registry_shared.adapters.readers import READAHEAD, Fetch, ObjectReadError, RangedReader, StreamReader

__all__ = ["READAHEAD", "Fetch", "ObjectReadError", "RangedReader", "StreamReader"]
