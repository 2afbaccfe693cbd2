"""Upstream pages parsed (proxy.upstream) and rendered into a scope (proxy.pages): tables of cases."""
from __future__ import annotations

import json

import pytest

from proxy.files import ProxiedFile, project_of
from proxy.pages import Learned, ProxiedPage, Scope, entries, parse_scope, render
from proxy.upstream import UpstreamPageError, parse_page, servable_filename, version_of

SHA = "ab" * 32
META = "cd" * 32
PAGE_URL = "https://upstream.example/simple/demo/"


def html_page(*anchors: str, head: str = "") -> bytes:
    return f"<html><head>{head}</head><body>{''.join(anchors)}</body></html>".encode()


def test_html_anchor_with_every_attribute() -> None:
    body = html_page(f'<a href="../../packages/demo-1.0-py3-none-any.whl#sha256={SHA.upper()}" '
                     'data-requires-python="&gt;=3.8" data-yanked="" '
                     f'data-dist-info-metadata="sha256={META}">demo-1.0-py3-none-any.whl</a>')
    page = parse_page(body, "text/html; charset=utf-8", PAGE_URL, "demo")
    [f] = page.files
    assert f.url == "https://upstream.example/packages/demo-1.0-py3-none-any.whl"
    assert (f.sha256, f.requires_python, f.yanked, f.metadata_sha256, f.version) == (SHA, ">=3.8", True, META, "1.0")
    assert (f.size, f.upload_time) == (None, None)
    assert page.versions == ["1.0"]


@pytest.mark.parametrize(("anchor", "why"), [
    ('<a href="demo-1.0.tar.gz">demo-1.0.tar.gz</a>', "no hash"),
    (f'<a href="demo-1.0.tar.gz#md5={"a" * 32}">demo-1.0.tar.gz</a>', "no sha256"),
    ('<a href="demo-1.0.tar.gz#sha256=short">demo-1.0.tar.gz</a>', "not a sha256"),
    (f'<a href="x#sha256={SHA}">a/b.tar.gz</a>', "slash in filename"),
    (f'<a href="x#sha256={SHA}">demo.metadata</a>', "would be taken for metadata"),
    (f'<a href="ftp://h/demo-1.0.tar.gz#sha256={SHA}">demo-1.0.tar.gz</a>', "not http"),
    ("<a>no href</a>", "no href"),
])
def test_unservable_html_files_are_skipped(anchor: str, why: str) -> None:
    page = parse_page(html_page(anchor), "text/html", PAGE_URL, "demo")
    assert page.files == [] and page.skipped == 1, why


def test_html_base_and_missing_text() -> None:
    body = html_page(f'<a href="demo-2.0.zip#sha256={SHA}"></a>', head='<base href="https://mirror.example/p/">')
    [f] = parse_page(body, "text/html", PAGE_URL, "demo").files
    assert (f.url, f.filename, f.version) == ("https://mirror.example/p/demo-2.0.zip", "demo-2.0.zip", "2.0")


def test_json_page() -> None:
    doc = {"meta": {"api-version": "1.1"}, "name": "demo", "versions": ["0.9", "1.0"], "files": [
        {"filename": "demo-1.0.tar.gz", "url": "/files/demo-1.0.tar.gz", "hashes": {"sha256": SHA, "md5": "x"},
         "requires-python": ">=3.9", "yanked": "oops", "size": 12, "upload-time": "2024-01-01T00:00:00Z",
         "core-metadata": {"sha256": META}},
        {"filename": "demo-0.9.tar.gz", "url": "https://f.example/demo-0.9.tar.gz", "hashes": {"blake2b": "x"}},
        {"filename": "demo-0.8.tar.gz", "url": "u", "hashes": {"sha256": SHA}, "core-metadata": True,
         "size": True, "requires-python": ""},
    ]}
    page = parse_page(json.dumps(doc).encode(), "application/vnd.pypi.simple.v1+json", PAGE_URL, "demo")
    assert page.versions == ["0.9", "1.0"] and page.skipped == 1
    first, second = page.files
    assert first.url == "https://upstream.example/files/demo-1.0.tar.gz"
    assert (first.size, first.upload_time, first.yanked, first.metadata_sha256) == (12, "2024-01-01T00:00:00Z",
                                                                                     "oops", META)
    assert (second.size, second.metadata_sha256, second.requires_python) == (None, None, None)  # no hash: not kept


@pytest.mark.parametrize(("body", "content_type"), [
    (b"not json", "application/vnd.pypi.simple.v1+json"),
    (b'{"files": {}}', "application/vnd.pypi.simple.v1+json"),
    (b"%PDF", "application/pdf"),
])
def test_not_a_simple_page(body: bytes, content_type: str) -> None:
    with pytest.raises(UpstreamPageError):
        parse_page(body, content_type, PAGE_URL, "demo")


@pytest.mark.parametrize(("filename", "version", "project"), [
    ("demo-1.0-py3-none-any.whl", "1.0", "demo"),
    ("Demo_Pkg-2.0.post1-py3-none-any.whl", "2.0.post1", "demo-pkg"),
    ("demo-pkg-1.0.tar.gz", "1.0", "demo-pkg"),
    ("demo-1.0.zip", "1.0", "demo"),
    ("demo-1.0.tar.bz2", "", None),
    ("demo-1.0-py2.7.egg", "", None),
    ("garbage.whl", "", None),
])
def test_filenames(filename: str, version: str, project: str | None) -> None:
    assert version_of(filename) == version
    assert project_of(filename) == project


@pytest.mark.parametrize(("filename", "ok"), [
    ("demo-1.0.tar.gz", True), ("", False), ("..", False), ("a\\b", False), ("a\x00b", False),
    ("x.whl.metadata", False), ("a" * 256, False),
])
def test_servable_filename(filename: str, ok: bool) -> None:
    assert servable_filename(filename) is ok


@pytest.mark.parametrize(("value", "scope"), [
    ("project:3", Scope("project", 3)), ("group:12", Scope("group", 12)),
    ("project:0", None), ("project:x", None), ("user:1", None), (None, None), ("project:3 ", None),
])
def test_parse_scope(value: str | None, scope: Scope | None) -> None:
    assert parse_scope(value) == scope


def test_files_base_per_scope() -> None:
    assert Scope("project", 3).files_base("https://r") == "https://r/api/v4/projects/3/packages/pypi/files"
    assert Scope("group", 5).files_base("https://r") == "https://r/api/v4/groups/5/-/packages/pypi/files"


def page_with(*files) -> ProxiedPage:
    return ProxiedPage("demo", True, 1.0, files, ("1.0",))


def test_only_servable_metadata_is_advertised_and_learned_sizes_fill_in() -> None:
    upstream_meta = parse_page(html_page(f'<a href="a#sha256={SHA}" data-core-metadata="sha256={META}">'
                                         'demo-1.0-py3-none-any.whl</a>'), "text/html", PAGE_URL, "demo").files[0]
    plain = parse_page(html_page(f'<a href="b#sha256={"ef" * 32}">demo-1.0.tar.gz</a>',
                                 f'<a href="c#sha256={"01" * 32}">demo-1.0-py2-none-any.whl</a>'),
                       "text/html", PAGE_URL, "demo").files
    page = page_with(upstream_meta, *plain)
    learned = {"demo-1.0-py2-none-any.whl": Learned(size=99, metadata_sha256="77" * 32)}
    got = entries(page, learned)
    assert [(e.core_metadata_sha256, e.size) for e in got] == [(META, None), (None, None), ("77" * 32, 99)]
    html = render(page, learned, "https://r/files", "text/html").body.decode()
    assert html.count("data-core-metadata") == 2
    as_json = json.loads(render(page, learned, "https://r/files", "application/vnd.pypi.simple.v1+json").body)
    assert [("size" in f, f["core-metadata"]) for f in as_json["files"]] == [
        (False, {"sha256": META}), (False, False), (True, {"sha256": "77" * 32})]


def test_rendering_is_stable() -> None:
    page = page_with(*parse_page(html_page(f'<a href="b#sha256={SHA}">demo-1.0.tar.gz</a>'), "text/html",
                                 PAGE_URL, "demo").files)
    one = render(page, {}, "https://r/files", "text/html")
    two = render(ProxiedPage.from_doc(page.to_doc()), {}, "https://r/files", "text/html")
    assert one == two and one.content_type == "text/html; charset=utf-8"


def test_proxied_file_names_and_doc() -> None:
    [f] = parse_page(html_page(f'<a href="b#sha256={SHA}">other-1.0.tar.gz</a>'), "text/html", PAGE_URL,
                     "demo").files
    file = ProxiedFile("demo", f)
    assert file.names == ["demo", "other"]  # index-api checks both against the scope
    assert file.object_key == f"proxy/{SHA}/other-1.0.tar.gz" and file.metadata_key.endswith(".tar.gz.metadata")
    assert ProxiedFile.from_doc({**file.to_doc(), "stored": True, "stored_size": 5}).stored_size == 5
