"""Credentials from a request: HTTP Basic (the only kind pip and twine send), and on GitLab's REST API
(the Packages API) also its token headers."""
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


# GitLab's REST API headers, each as the Basic (username, password) pair the resolver already knows.
TOKEN_HEADERS = (("PRIVATE-TOKEN", "__token__"), ("Deploy-Token", "__token__"), ("JOB-TOKEN", "gitlab-ci-token"))


def api_credentials(request: web.Request) -> tuple[str | None, str | None]:
    """Basic auth, else `PRIVATE-TOKEN`, `Deploy-Token` or `JOB-TOKEN` as GitLab's REST API accepts them."""
    username, password = basic_credentials(request)
    if username is not None or password is not None:
        return username, password
    for header, as_username in TOKEN_HEADERS:
        token = request.headers.get(header, "").strip()
        if token:
            return as_username, token
    return None, None
