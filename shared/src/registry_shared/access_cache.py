"""Short-lived caches of credentials and access lookups, shared by the services that authorize requests
(index-api, upload-api). Keys never hold a secret (a token is keyed by its sha256). Every replica drops
them on `token.revoked` / `access.changed` and answers the publisher once it has (registry_shared.replicas),
so a revocation holds everywhere by the time `registry-admin` returns; the TTL bounds staleness only when
the broker was unreachable.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable
from enum import Enum
from typing import Any, Final, Generic, Literal, TypeVar

from .auth import JOB_TOKEN_USERNAME, CredentialResolver
from .domain.access import Principal
from .errors import Unauthorized

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Missing(Enum):
    """What `TtlCache.get` returns for an absent or expired key: a cached value may be anything, None too.
    An enum member, so `value is MISSING` narrows the result to the cached type."""

    MISSING = "missing"


MISSING: Final = Missing.MISSING
_REJECTED = object()  # a cached 401 (bad job token, revoked or expired token)


class TtlCache(Generic[K, V]):
    """A dict whose entries live `ttl` seconds; bounded, cleared wholesale on revocation events."""

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | Literal[Missing.MISSING]:
        """The value, or MISSING when absent or expired."""
        found = self._entries.get(key)
        if found is None:
            return MISSING
        expires, value = found
        if expires <= self._clock():
            self._entries.pop(key, None)
            return MISSING
        return value

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._purge()
        self._entries[key] = (self._clock() + self.ttl, value)

    def clear(self) -> int:
        dropped = len(self._entries)
        self._entries.clear()
        return dropped

    def __len__(self) -> int:
        return len(self._entries)

    def _purge(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:  # still full: drop the oldest insertions
            del self._entries[next(iter(self._entries))]


async def authenticate(resolver: CredentialResolver, cache: TtlCache[Any, Any], username: str | None,
                       password: str | None) -> Principal:
    """`resolver.resolve` through `cache`, which remembers principals and 401s by the token's hash."""
    if not password:
        return await resolver.resolve(username, password)
    # Keyed by a hash, never the secret; the username only matters for job tokens.
    key = (username == JOB_TOKEN_USERNAME, hashlib.sha256(password.encode("utf-8", "surrogateescape")).hexdigest())
    cached = cache.get(key)
    if cached is _REJECTED:
        raise Unauthorized()
    if cached is not MISSING:
        return cached  # type: ignore[no-any-return]
    try:
        principal = await resolver.resolve(username, password)
    except Unauthorized:
        cache.put(key, _REJECTED)
        raise
    cache.put(key, principal)
    return principal
