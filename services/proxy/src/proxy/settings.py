"""The proxy reads `ProxySettings` (shared, so every setting name is documented in one place)."""
from registry_shared.settings import ProxySettings

__all__ = ["ProxySettings"]
