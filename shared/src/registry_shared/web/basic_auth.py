"""HTTP Basic credentials, the only kind pip and twine send."""
from __future__ import annotations

import base64
import binascii

from aiohttp import web


def basic_credentials(request: web.Request) -> tuple[str | None, str | None]:
    """(username, password) from `Authorization: Basic ...`, or (None, None). Malformed means none."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    if not sep:
        return username or None, None
    return username, password
