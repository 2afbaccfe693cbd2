"""Signed-in sessions and CSRF tokens, as pure rules over a small store (SPEC §11).

The browser holds only a random session id (an HttpOnly, SameSite cookie); the server keeps the sha256 of
that id with the id of the personal access token it was opened with, never the token. A session ends when
`WEB_SESSION_TTL` has passed, when its token is revoked or expires (checked on every request), or at
`/-/sign_out`. Every form of a session carries its CSRF token; a POST whose token does not match is refused.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

SESSION_COOKIE = "registry_session"
# Before sign-in there is no session: the sign-in form's token is bound to this cookie instead (double
# submit), so another site cannot sign a visitor in with its own token.
PRE_SESSION_COOKIE = "registry_csrf"
CSRF_FIELD = "csrf_token"


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def session_key(session_id: str) -> str:
    """What the store keeps of a session id: its sha256, so a leaked store opens no session."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an empty or missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8", "surrogateescape"), given.encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class Session:
    key: str  # sha256 of the session id
    token_id: int  # the personal access token it was opened with
    user_id: int
    csrf: str
    created_at: datetime
    expires_at: datetime

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or datetime.now(UTC))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.key, "token_id": self.token_id, "user_id": self.user_id, "csrf": self.csrf,
                "created_at": self.created_at, "expires_at": self.expires_at}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Session:
        return cls(key=doc["_id"], token_id=int(doc["token_id"]), user_id=int(doc["user_id"]), csrf=doc["csrf"],
                   created_at=_aware(doc["created_at"]), expires_at=_aware(doc["expires_at"]))


def _aware(value: object) -> datetime:
    if isinstance(value, str):  # nx-27017 may hand back a stored datetime as ISO text
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def open_session(token_id: int, user_id: int, ttl_seconds: float, token_expires_at: datetime | None = None,
                 now: datetime | None = None) -> tuple[str, Session]:
    """A new session (the id for the cookie, and the record to store). It never outlives its token."""
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_seconds)
    if token_expires_at is not None:
        expires = min(expires, _aware(token_expires_at))
    session_id = new_secret()
    return session_id, Session(key=session_key(session_id), token_id=token_id, user_id=user_id,
                               csrf=new_secret(), created_at=now, expires_at=expires)


class SessionStore(Protocol):
    async def put(self, session: Session) -> None: ...
    async def get(self, key: str) -> Session | None: ...
    async def delete(self, key: str) -> None: ...
    async def purge_expired(self, now: datetime) -> int: ...


class Sessions:
    """Opening, finding and ending sessions over a store."""

    def __init__(self, store: SessionStore, ttl_seconds: float) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds

    async def open(self, token_id: int, user_id: int, token_expires_at: datetime | None = None
                   ) -> tuple[str, Session]:
        session_id, session = open_session(token_id, user_id, self.ttl_seconds, token_expires_at)
        # Sessions nobody came back to are removed here: one query per sign-in keeps the collection small.
        await self.store.purge_expired(session.created_at)
        await self.store.put(session)
        return session_id, session

    async def find(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's id; an expired one is removed and not returned."""
        if not session_id or len(session_id) > 128:
            return None
        session = await self.store.get(session_key(session_id))
        if session is None:
            return None
        if session.expired():
            await self.store.delete(session.key)
            return None
        return session

    async def end(self, session: Session) -> None:
        await self.store.delete(session.key)
