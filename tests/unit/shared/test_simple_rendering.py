"""The simple API renderers and content negotiation."""
from __future__ import annotations

import json

import pytest

from registry_shared.domain.simple import (
    HTML_TYPE,
    JSON_TYPE,
    FileEntry,
    choose_content_type,
    render_page_html,
    render_page_json,
    strong_etag,
)

ENTRY = FileEntry(filename="demo-1.0-py3-none-any.whl", sha256="ab" * 32, size=10, upload_time="2026-01-01T00:00:00Z",
                  version="1.0", requires_python=">=3.8,<4", core_metadata_sha256="cd" * 32)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [(None, HTML_TYPE), ("", HTML_TYPE), ("text/html", HTML_TYPE), ("*/*", HTML_TYPE),
     ("application/vnd.pypi.simple.v1+json", JSON_TYPE), ("application/vnd.pypi.simple.latest+json", JSON_TYPE),
     ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01", JSON_TYPE),
     ("application/vnd.pypi.simple.v1+json;q=0.1, text/html", HTML_TYPE),
     ("text/html;q=0.5, */*;q=0.9", HTML_TYPE), ("image/png", None), ("application/vnd.pypi.simple.v1+json;q=0", None)],
)
def test_content_negotiation(accept: str | None, expected: str | None) -> None:
    assert choose_content_type(accept) == expected


def test_page_html_escapes_and_advertises_metadata() -> None:
    body = render_page_html("demo", [ENTRY], "http://h/api/v4/projects/1/packages/pypi/files").decode()
    assert (f'<a href="http://h/api/v4/projects/1/packages/pypi/files/{"ab" * 32}/demo-1.0-py3-none-any.whl'
            f'#sha256={"ab" * 32}" data-requires-python="&gt;=3.8,&lt;4" ') in body
    assert f'data-dist-info-metadata="sha256={"cd" * 32}" data-core-metadata="sha256={"cd" * 32}"' in body


def test_page_html_without_metadata_does_not_advertise_it() -> None:
    entry = FileEntry(**{**ENTRY.to_doc(), "core_metadata_sha256": None, "requires_python": None})
    body = render_page_html("demo", [entry], "http://h/f").decode()
    assert "data-core-metadata" not in body and "data-requires-python" not in body


def test_page_json_pep_691_700() -> None:
    doc = json.loads(render_page_json("demo", [ENTRY], "http://h/f", ["1.0"]))
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["versions"] == ["1.0"]
    f = doc["files"][0]
    assert f["url"] == f"http://h/f/{'ab' * 32}/demo-1.0-py3-none-any.whl"
    assert f["hashes"] == {"sha256": "ab" * 32}
    assert f["core-metadata"] == {"sha256": "cd" * 32} == f["dist-info-metadata"]
    assert (f["size"], f["upload-time"], f["yanked"]) == (10, "2026-01-01T00:00:00Z", False)


def test_strong_etag_changes_with_body() -> None:
    assert strong_etag(b"a") != strong_etag(b"b")
    assert strong_etag(b"a").startswith('"') and not strong_etag(b"a").startswith("W/")


def test_page_json_with_a_file_of_unknown_size_declares_1_0() -> None:
    """PEP 700: `size` is mandatory from api-version 1.1 on; a page that cannot give it declares 1.0."""
    unsized = FileEntry(**{**ENTRY.to_doc(), "filename": "demo-1.0.tar.gz", "size": None})
    doc = json.loads(render_page_json("demo", [ENTRY, unsized], "http://h/f", ["1.0"]))
    assert doc["meta"]["api-version"] == "1.0"
    assert [f.get("size") for f in doc["files"]] == [10, None]  # what is known is kept
    assert doc["versions"] == ["1.0"]
    assert json.loads(render_page_json("demo", [], "http://h/f", []))["meta"]["api-version"] == "1.1"
