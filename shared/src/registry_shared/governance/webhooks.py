"""Webhooks (SPEC §10): which URLs a hook may point at, and how a delivery is signed.

Hooks to loopback, link-local and private addresses are refused (as GitLab refuses them, against request
forgery) unless WEBHOOK_ALLOW_LOCAL_NETWORK is true. The check runs when a hook is created and again
before every delivery (a name may resolve elsewhere later).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from ..errors import ErrorParameter
from ..records.times import stored_time
from .audit import EVENT_NAMES

OBJECT_KIND = "package_event"
EVENT_HEADER = "Package Hook"


class UrlBlocked(ErrorParameter):
    """400 `{"error": "url is blocked: ..."}`."""

    def __init__(self, why: str) -> None:
        super().__init__(f"url is blocked: {why}")


def parse_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, else UrlBlocked."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlBlocked("invalid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlBlocked("only http and https URLs with a host are allowed")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def local_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_reserved
            or ip.is_multicast)


async def check_url(url: str, allow_local: bool) -> None:
    """Refuse a URL whose host is, or resolves to, a local-network address (unless allowed)."""
    host, port = parse_url(url)
    if allow_local:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlBlocked("host cannot be resolved") from exc
    for info in infos:
        if local_address(str(info[4][0])):
            raise UrlBlocked("requests to the local network are not allowed")


def check_events(events: object) -> list[str]:
    """The audit event names a hook wants (empty: all); unknown names are a 400."""
    if events in (None, "", []):
        return []
    names = [e.strip() for e in events.split(",")] if isinstance(events, str) else events
    if not isinstance(names, list) or not all(isinstance(n, str) and n in EVENT_NAMES for n in names):
        raise ErrorParameter(f"events is invalid; allowed: {', '.join(EVENT_NAMES)}")
    return [str(n) for n in names]


def wants(hook_events: list[str], event_name: str) -> bool:
    return not hook_events or event_name in hook_events


def delivery(record: dict[str, Any], token: str) -> tuple[bytes, dict[str, str]]:
    """The body (the record's fields plus `object_kind`) and the headers of one delivery."""
    body = json.dumps({**record, "object_kind": OBJECT_KIND}, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": EVENT_HEADER,
               "X-Registry-Signature": "sha256=" + sign(body, token)}
    if token:
        headers["X-Gitlab-Token"] = token
    return body, headers


def sign(body: bytes, token: str) -> str:
    """Hex HMAC-SHA256 of the body keyed with the hook's token."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def hook_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A hook as the API shows it: never its token."""
    scope_kind, _, scope_id = str(doc["scope"]).partition(":")
    created = stored_time(doc.get("created_at"))
    return {"id": doc["_id"], "url": doc["url"], "events": list(doc.get("events") or []),
            f"{scope_kind}_id": int(scope_id), "token_set": bool(doc.get("token")),
            "created_at": created.isoformat() if created is not None else None}
