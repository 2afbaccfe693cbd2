"""index-api reads `IndexSettings` (shared, so `registry-admin` and the chart document one set of names)."""
from registry_shared.settings import IndexSettings

__all__ = ["IndexSettings"]
