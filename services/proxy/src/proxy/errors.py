"""Errors only the proxy raises; the shared middleware renders them as GitLab-style JSON."""
from __future__ import annotations

from registry_shared.errors import DomainError


class UpstreamUnavailable(DomainError):
    """The upstream index failed and no copy young enough to serve stale is cached."""

    status = 502

    def default_message(self) -> str:
        return "502 Bad Gateway"


class UpstreamError(Exception):
    """One upstream request failed: `reason` is a short label for logs and metrics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IntegrityError(UpstreamError):
    """The bytes upstream sent are not the ones its page advertised (sha256 or size): nothing is kept."""
