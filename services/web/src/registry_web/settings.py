"""The web interface reads `WebSettings` (shared, so the chart and `make up` document one set of names)."""
from registry_shared.settings import WebSettings

__all__ = ["WebSettings"]
