"""The web interface's cache of package pages (registry_web.cache), and the events that drop it (consumers.py)."""
from __future__ import annotations

from typing import Any

import pytest

from registry_shared.events import IndexChanged, PackageStatusChanged, PolicyChanged, Scope
from registry_web.access import WebCaches
from registry_web.cache import PackagePages
from registry_web.consumers import consume


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pages_are_dropped_by_project_and_name() -> None:
    pages: PackagePages[str] = PackagePages()
    pages.put(1, 10, "demo", "demo 1.0")
    pages.put(1, 11, "demo", "demo 2.0")
    pages.put(1, 12, "other", "other 1.0")
    pages.put(2, 20, "demo", "demo of project 2")
    assert pages.invalidate({1}, {"demo"}) == 2
    assert (pages.get(1, 10), pages.get(1, 11), pages.get(1, 12), pages.get(2, 20)) == (
        None, None, "other 1.0", "demo of project 2")
    assert pages.invalidate({1}, set()) == 1  # no names: the whole project
    assert pages.get(1, 12) is None and len(pages) == 1


def test_pages_expire_and_the_oldest_goes_when_full() -> None:
    clock = Clock()
    pages: PackagePages[str] = PackagePages(ttl=10, max_entries=2, clock=clock)
    pages.put(1, 1, "a", "a")
    pages.put(1, 2, "b", "b")
    pages.put(1, 3, "c", "c")
    assert pages.get(1, 1) is None and pages.get(1, 2) == "b" and pages.get(1, 3) == "c"
    clock.now += 10
    assert pages.get(1, 2) is None
    assert pages.clear() == 1


class _Message:
    """The part of an incoming AMQP message the consumer reads."""

    def __init__(self, event: object) -> None:
        self.type = event.kind  # type: ignore[attr-defined]
        self.body = event.model_dump_json().encode()  # type: ignore[attr-defined]
        self.correlation_id = "corr-9"
        self.processed = False

    def process(self, **_kwargs: object) -> Any:
        message = self

        class _Context:
            async def __aenter__(self) -> None:
                return None

            async def __aexit__(self, *_exc: object) -> None:
                message.processed = True

        return _Context()


class _Book:
    def __init__(self) -> None:
        self.drops = 0

    def drop(self) -> None:
        self.drops += 1


@pytest.mark.parametrize("event", [
    PolicyChanged(scope_type="instance", actor={"principal": "admin_cli"}),
    PackageStatusChanged(project_id=1, name="demo", status="quarantined", actor={"principal": "user"}),
])
async def test_a_policy_event_drops_the_policies_and_every_page_and_is_answered(event: object) -> None:
    caches, book, answered = WebCaches(ttl=5), _Book(), []
    caches.pages.put(1, 10, "demo", "demo 1.0")
    caches.pages.put(2, 20, "other", "other 1.0")
    caches.usernames.put(7, "ada")

    async def applied(message: object) -> None:
        answered.append(message)

    message = _Message(event)
    await consume(message, caches, book, applied)  # type: ignore[arg-type]
    assert (book.drops, len(caches.pages), message.processed, answered) == (1, 0, True, [message])
    assert caches.usernames.get(7) == "ada"  # credentials did not change


async def test_index_changed_drops_only_the_pages_it_names() -> None:
    caches, book, answered = WebCaches(ttl=5), _Book(), []
    caches.pages.put(1, 10, "demo", "demo 1.0")
    caches.pages.put(1, 12, "other", "other 1.0")

    async def applied(message: object) -> None:
        answered.append(message)

    event = IndexChanged(scopes=[Scope(kind="project", id=1)], names=["demo"])
    await consume(_Message(event), caches, book, applied)  # type: ignore[arg-type]
    assert (book.drops, len(caches.pages), len(answered)) == (0, 1, 1)
