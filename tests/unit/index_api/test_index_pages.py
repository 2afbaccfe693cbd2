"""Rendering from precomputed documents and the group merge (index_api.pages)."""
from __future__ import annotations

import json

from index_api.pages import index_page, merge_group_files, package_page, scope_root, visible_versions
from registry_shared.domain.simple import HTML_TYPE, JSON_TYPE, FileEntry, strong_etag
from registry_shared.records.pages import PackagePageDoc


def entry(filename: str, project_id: int, version: str = "1.0", sha: str = "a") -> FileEntry:
    return FileEntry(filename=filename, sha256=sha * 64, size=1, upload_time="2025-01-01T00:00:00Z",
                     version=version, project_id=project_id)


def test_lowest_project_id_wins_for_one_filename() -> None:
    entries = [entry("x-1.0.tar.gz", 9, sha="9"), entry("x-1.0.tar.gz", 4, sha="4"), entry("x-1.1.tar.gz", 9)]
    merged = merge_group_files(entries, None)
    assert [(e.filename, e.project_id) for e in merged] == [("x-1.0.tar.gz", 4), ("x-1.1.tar.gz", 9)]


def test_unreadable_projects_are_left_out_before_choosing() -> None:
    entries = [entry("x-1.0.tar.gz", 4, sha="4"), entry("x-1.0.tar.gz", 9, sha="9"), entry("y-1.0.tar.gz", 4)]
    merged = merge_group_files(entries, frozenset({9}))
    assert [(e.filename, e.project_id) for e in merged] == [("x-1.0.tar.gz", 9)]
    assert merge_group_files(entries, frozenset()) == []


def test_versions_follow_the_served_files() -> None:
    served = [entry("x-1.0.tar.gz", 1, version="1.0")]
    assert visible_versions(["1.0", "2.0"], served, changed=True) == ["1.0"]
    assert visible_versions(["1.0.0", "2.0"], served, changed=True) == ["1.0.0"]  # canonical comparison
    assert visible_versions(["1.0", "2.0"], served, changed=False) == ["1.0", "2.0"]


def test_scope_roots_use_numeric_ids() -> None:
    assert scope_root("https://r", "project", 5) == "https://r/api/v4/projects/5/packages/pypi"
    assert scope_root("https://r", "group", 2) == "https://r/api/v4/groups/2/-/packages/pypi"


def test_index_page_sorts_dedupes_and_tags_its_etag() -> None:
    page = index_page("acme", ["b", "a", "b"], "https://r/x", JSON_TYPE)
    assert json.loads(page.body)["projects"] == [{"name": "a"}, {"name": "b"}]
    assert page.etag == strong_etag(page.body)
    assert page.content_type == JSON_TYPE
    html = index_page("acme", ["a"], "https://r/x", HTML_TYPE)
    assert html.content_type == "text/html; charset=utf-8"
    assert b'href="https://r/x/simple/a"' in html.body


def test_package_page_none_when_nothing_readable() -> None:
    doc = PackagePageDoc("project", 4, "x", ("1.0",), (entry("x-1.0.tar.gz", 4),))
    assert package_page(doc, "https://r/x", HTML_TYPE, frozenset({5})) is None
    page = package_page(doc, "https://r/x", HTML_TYPE, None)
    assert page is not None and b"https://r/x/files/" in page.body
