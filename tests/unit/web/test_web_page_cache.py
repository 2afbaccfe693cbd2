"""The web interface's cache of package pages (registry_web.cache)."""
from __future__ import annotations

from registry_web.cache import PackagePages


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
