"""The README the worker renders once per upload (metadata_worker.readme): per content type, sanitised."""
from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from metadata_worker.readme import MAX_SOURCE_CHARS, BoundedRenderer, content_type_parts, render_readme


@pytest.mark.parametrize(("header", "kind", "params"), [
    ("text/markdown; charset=UTF-8; variant=GFM", "text/markdown", {"charset": "UTF-8", "variant": "GFM"}),
    ("text/markdown", "text/markdown", {}),
    ("text/x-rst", "text/x-rst", {}),
    ("TEXT/PLAIN", "text/plain", {}),
    (None, "text/x-rst", {}),  # pypi.org's default
])
def test_content_type_parts(header: str | None, kind: str, params: dict[str, str]) -> None:
    assert content_type_parts(header) == (kind, params)


def test_markdown_renders_headings_and_emphasis() -> None:
    html = render_readme("# Title\n\nSome **bold** text.\n\n## Part\n", "text/markdown")
    assert html is not None
    assert "<h1" in html and ">Title<" in html and "<h2" in html and "<strong>bold</strong>" in html


@pytest.mark.parametrize("content_type", ["text/markdown", "text/markdown; variant=CommonMark", "text/x-rst",
                                          "text/plain", None])
def test_scripts_and_handlers_never_survive(content_type: str | None) -> None:
    source = ('Title\n=====\n\n<script>alert(1)</script>\n\n<img src="x" onerror="alert(2)">\n\n'
              '<a href="javascript:alert(3)">x</a>\n')
    html = render_readme(source, content_type)
    assert html is not None
    tags = Elements()
    tags.feed(html)
    assert "script" not in [tag for tag, _ in tags.found]
    attributes = [(name, value or "") for _, attrs in tags.found for name, value in attrs]
    assert not [name for name, _ in attributes if name.startswith("on")]
    assert not [value for _, value in attributes if value.strip().lower().startswith("javascript:")]


class Elements(HTMLParser):
    """Every start tag of a document, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def test_restructuredtext_renders() -> None:
    html = render_readme("Title\n=====\n\nA *word* and a list:\n\n- one\n- two\n", "text/x-rst")
    assert html is not None and "<h1>Title" in html and "<em>word</em>" in html and "<li><p>one</p></li>" in html


def test_invalid_restructuredtext_is_shown_as_text() -> None:
    html = render_readme("Title\n=====\n\n.. raw:: html\n\n   <b>raw</b>\n", "text/x-rst")
    assert html is not None and "&lt;b&gt;raw&lt;/b&gt;" in html


def test_plain_text_is_escaped() -> None:
    assert render_readme("a < b & <i>c</i>", "text/plain") == "a &lt; b &amp; &lt;i&gt;c&lt;/i&gt;"


@pytest.mark.parametrize("description", [None, "", "   \n", "x" * (MAX_SOURCE_CHARS + 1)])
def test_nothing_to_render(description: str | None) -> None:
    assert render_readme(description, "text/markdown") is None


def test_a_renderer_failure_leaves_no_readme() -> None:
    # docutils: RecursionError. Rendered where the worker renders, in the renderer's own process: unwinding
    # that deep a stack also leaves unraisable exceptions behind, which pytest would report in its own.
    deep = "".join("  " * depth + "- item\n\n" for depth in range(400))
    renderer = BoundedRenderer(timeout=60.0)
    try:
        assert renderer(deep, "text/x-rst") is None
        assert "<em>still</em>" in (renderer("*still*", "text/x-rst") or "")  # and the renderer goes on
    finally:
        renderer.close()


def test_the_worker_s_renderer_gives_up_on_a_slow_readme() -> None:
    renderer = BoundedRenderer(timeout=1.0)
    try:
        assert renderer("# Title\n", "text/markdown") is not None  # the pool works (and is warm)
        started = time.monotonic()
        assert renderer(">" * 40_000 + " x", "text/markdown") is None  # about 30 s of comrak
        assert time.monotonic() - started < 10
        assert "<em>again</em>" in (renderer("*again*", "text/markdown") or "")  # a fresh pool took over
    finally:
        renderer.close()
