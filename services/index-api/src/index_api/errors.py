"""Errors only the read path raises (the shared middleware renders them, with their own headers)."""
from __future__ import annotations

from registry_shared.errors import DomainError


class NotAcceptable(DomainError):
    """The client's Accept header allows neither HTML nor PEP 691 JSON."""

    status = 406

    def default_message(self) -> str:
        return "406 Not Acceptable"


class RangeNotSatisfiable(DomainError):
    """A Range that starts past the end of the file; RFC 9110 wants `Content-Range: bytes */size`."""

    status = 416

    def __init__(self, size: int) -> None:
        super().__init__()
        self.headers = {"Content-Range": f"bytes */{size}"}

    def default_message(self) -> str:
        return "416 Range Not Satisfiable"

