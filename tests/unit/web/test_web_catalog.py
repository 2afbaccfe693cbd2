"""Pure rules of the web pages: listing rows, search matching, shown metadata, redirects after sign-in."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry_web.metadata import parse_shown, safe_url
from registry_web.service import Page, aggregate, matches
from registry_web.views import _next

PROJECT = {"_id": 1, "path": "acme/app"}


def row(version: str, package_id: int, *, name: str = "demo", yanked: object = False, day: int = 1,
        summary: str = "") -> dict[str, object]:
    return {"project_id": 1, "name": name, "display_name": name.title(), "version": version, "package_id": package_id,
            "summary": summary or f"summary {version}", "created_at": datetime(2026, 1, day, tzinfo=UTC),
            "yanked": yanked}


def test_a_listing_row_per_name_with_its_latest_version_and_last_update() -> None:
    rows = aggregate([row("1.0", 10, day=1), row("1.10", 12, day=2), row("1.9", 11, day=5),
                      row("0.1", 20, name="other", day=3)], {1: PROJECT})
    assert [(r.name, r.latest, r.package_id, r.summary) for r in rows] == [
        ("Demo", "1.10", 12, "summary 1.10"), ("Other", "0.1", 20, "summary 0.1")]
    assert rows[0].updated == datetime(2026, 1, 5, tzinfo=UTC)


def test_the_latest_version_is_not_a_yanked_one_unless_all_are() -> None:
    [shown] = aggregate([row("1.0", 10), row("2.0", 11, yanked="broken")], {1: PROJECT})
    assert shown.latest == "1.0"
    [shown] = aggregate([row("1.0", 10, yanked=True), row("2.0", 11, yanked=True)], {1: PROJECT})
    assert shown.latest == "2.0"


@pytest.mark.parametrize(("query", "found"), [
    ("", True), ("dem", True), ("DEMO", True), ("summary 1", True), ("nope", False), ("my_demo", True),
    ("my.demo", True),
])
def test_search_matches_names_in_any_spelling_and_summaries(query: str, found: bool) -> None:
    [shown] = aggregate([row("1.0", 10, name="my-demo")], {1: PROJECT})
    assert matches(shown, query) is found


@pytest.mark.parametrize(("total", "number", "count", "shown"), [
    (0, 1, 1, []), (20, 1, 1, list(range(20))), (21, 2, 2, [20]), (45, 3, 3, list(range(40, 45))), (5, 9, 1, []),
])
def test_pages_of_twenty(total: int, number: int, count: int, shown: list[int]) -> None:
    page = Page(number, total)
    assert page.count == count and page.slice(list(range(total))) == shown


def test_shown_metadata_from_core_metadata() -> None:
    data = (b"Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nSummary: A demo\nAuthor: Ada\n"
            b"Author-email: ada@example.com\nLicense-Expression: MIT\nRequires-Python: >=3.9\n"
            b"Project-URL: Source, https://example.com/src\nProject-URL: Evil, javascript:alert(1)\n"
            b"Home-page: UNKNOWN\nClassifier: Programming Language :: Python :: 3\n"
            b"Requires-Dist: requests>=2\nRequires-Dist: rich; extra == 'cli'\n\nLong description\n")
    shown = parse_shown(data)
    assert (shown.summary, shown.license, shown.requires_python) == ("A demo", "MIT", ">=3.9")
    assert shown.authors == ["Ada", "ada@example.com"]
    assert shown.urls == [("Source", "https://example.com/src")]  # the javascript: link is dropped
    assert shown.classifiers == ["Programming Language :: Python :: 3"]
    assert shown.dependencies == ["requests>=2", "rich; extra == 'cli'"]
    assert parse_shown(None).summary == ""


@pytest.mark.parametrize(("url", "safe"), [
    ("https://example.com/x", True), ("http://example.com", True), ("javascript:alert(1)", False),
    ("data:text/html,x", False), ("//example.com", False), ("https://", False), (" https://a.b ", True),
])
def test_only_http_links_are_shown(url: str, safe: bool) -> None:
    assert (safe_url(url) is not None) is safe


@pytest.mark.parametrize(("target", "expected"), [
    ("/acme/-/packages", "/acme/-/packages"), (None, "/"), ("", "/"), ("//evil.example", "/"),
    ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("/" + "a" * 3000, "/"),
])
def test_sign_in_only_returns_to_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert _next(target) == expected
