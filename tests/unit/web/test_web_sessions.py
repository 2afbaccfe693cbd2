"""Sessions and CSRF of the web interface (registry_web.sessions, registry_web.middleware.csrf)."""
from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from registry_shared.domain.access import ANONYMOUS
from registry_shared.web.app import create_base_app
from registry_web.keys import PRINCIPAL, SESSION
from registry_web.middleware import csrf
from registry_web.sessions import Session, Sessions, open_session, session_key, tokens_match

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, Session] = {}

    async def put(self, session: Session) -> None:
        self.rows[session.key] = session

    async def get(self, key: str) -> Session | None:
        return self.rows.get(key)

    async def delete(self, key: str) -> None:
        self.rows.pop(key, None)

    async def purge_expired(self, now: datetime) -> int:
        gone = [key for key, session in self.rows.items() if session.expires_at < now]
        for key in gone:
            del self.rows[key]
        return len(gone)


def test_the_store_keeps_a_hash_of_the_session_id_never_the_id() -> None:
    session_id, session = open_session(token_id=7, user_id=3, ttl_seconds=60, now=NOW)
    assert session.key == hashlib.sha256(session_id.encode()).hexdigest() == session_key(session_id)
    assert session_id not in str(session.to_doc())
    assert len(session_id) >= 40 and len(session.csrf) >= 40 and session.csrf != session_id
    assert Session.from_doc(session.to_doc()) == session


@pytest.mark.parametrize(("token_expires", "expected"), [
    (None, NOW + timedelta(hours=12)),
    (NOW + timedelta(hours=1), NOW + timedelta(hours=1)),  # never outlives its token
    (NOW + timedelta(days=3), NOW + timedelta(hours=12)),
    ((NOW + timedelta(minutes=5)).replace(tzinfo=None), NOW + timedelta(minutes=5)),  # stored naive (UTC)
])
def test_a_session_expires_after_its_ttl_or_with_its_token(token_expires: datetime | None,
                                                           expected: datetime) -> None:
    _, session = open_session(1, 1, 12 * 3600, token_expires, now=NOW)
    assert session.expires_at == expected
    assert not session.expired(expected - timedelta(seconds=1)) and session.expired(expected)


def test_two_sessions_never_share_an_id_or_a_csrf_token() -> None:
    first, second = open_session(1, 1, 60), open_session(1, 1, 60)
    assert first[0] != second[0] and first[1].csrf != second[1].csrf


@pytest.mark.parametrize(("expected", "given", "ok"), [
    ("abc", "abc", True), ("abc", "abd", False), ("abc", "", False), ("", "", False), (None, "abc", False),
    ("abc", None, False), ("abc", "abcd", False), ("é", "é", True),
])
def test_tokens_match(expected: str | None, given: str | None, ok: bool) -> None:
    assert tokens_match(expected, given) is ok


async def test_sessions_find_a_live_one_and_drop_an_expired_one() -> None:
    store = FakeStore()
    sessions = Sessions(store, ttl_seconds=60)
    session_id, session = await sessions.open(token_id=5, user_id=2)
    assert await sessions.find(session_id) == session
    assert await sessions.find("not-a-session") is None
    assert await sessions.find(None) is None and await sessions.find("x" * 500) is None
    old_id, old = open_session(5, 2, 60, now=datetime.now(UTC) - timedelta(hours=1))
    await store.put(old)
    assert await sessions.find(old_id) is None
    assert old.key not in store.rows  # removed when found expired
    await sessions.end(session)
    assert await sessions.find(session_id) is None


async def test_signing_in_removes_the_sessions_nobody_came_back_to() -> None:
    store = FakeStore()
    _, stale = open_session(5, 2, 60, now=datetime.now(UTC) - timedelta(hours=1))
    await store.put(stale)
    _, fresh = await Sessions(store, ttl_seconds=60).open(token_id=6, user_id=2)
    assert set(store.rows) == {fresh.key}


# -- CSRF ----------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def csrf_app(session: Session | None) -> web.Application:
    @web.middleware
    async def visitor(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[PRINCIPAL] = ANONYMOUS
        if session is not None:
            request[SESSION] = session
        return await handler(request)

    async def done(_request: web.Request) -> web.Response:
        return web.Response(text="done")

    app = create_base_app("web-test")
    app.middlewares.extend([visitor, csrf])
    app.router.add_post("/acme/app/-/packages/1/delete", done)
    app.router.add_get("/acme/app/-/packages/1", done)
    app.router.add_post("/-/sign_in", done)
    return app


@pytest.mark.parametrize(("form", "status"), [
    ({}, 403), ({"csrf_token": ""}, 403), ({"csrf_token": "forged"}, 403), ({"csrf_token": "RIGHT"}, 200),
])
async def test_every_post_needs_the_session_s_csrf_token(form: dict[str, str], status: int) -> None:
    _, session = open_session(1, 1, 60)
    form = {k: (session.csrf if v == "RIGHT" else v) for k, v in form.items()}
    async with TestClient(TestServer(csrf_app(session))) as client:
        response = await client.post("/acme/app/-/packages/1/delete", data=form)
        assert response.status == status
        assert (await client.get("/acme/app/-/packages/1")).status == 200  # reads need no token


async def test_a_post_without_a_session_is_refused_even_with_a_token() -> None:
    async with TestClient(TestServer(csrf_app(None))) as client:
        response = await client.post("/acme/app/-/packages/1/delete", data={"csrf_token": "anything"})
        assert response.status == 403
        # Sign-in has no session yet: it checks its own token (the pre-session cookie) in the view.
        assert (await client.post("/-/sign_in", data={})).status == 200
