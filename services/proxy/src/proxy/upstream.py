"""Upstream package pages (PEP 691 JSON or PEP 503 HTML) parsed into one model, as pure functions.

Only files the registry can serve are kept: each needs a sha256 (the registry's file URLs are
`/files/{sha256}/{filename}` and every byte is verified against it) and a plain filename.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.version import Version

from registry_shared.domain.filenames import version_of

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# JSON first; HTML (every simple index speaks it, pypiserver only it) when JSON is not on offer.
UPSTREAM_ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BAD_FILENAME_RE = re.compile(r"[\x00-\x1f\x7f/\\]")


class UpstreamPageError(Exception):
    """The upstream answered 200 with something that is not a simple page."""


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream page, with what the registry re-advertises."""

    filename: str
    url: str  # absolute, without fragment
    sha256: str
    version: str = ""  # from the filename; "" when it does not parse
    size: int | None = None
    upload_time: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    metadata_sha256: str | None = None  # PEP 658 metadata upstream advertises, with its sha256

    def to_doc(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> UpstreamFile:
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


@dataclass(frozen=True)
class UpstreamPage:
    name: str
    files: list[UpstreamFile] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    skipped: int = 0  # files left out: no sha256, or a filename the registry cannot serve


def parse_page(body: bytes, content_type: str, page_url: str, name: str) -> UpstreamPage:
    """The page from its body; the media type decides JSON or HTML."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.endswith("+json") or media == "application/json":
        return parse_json_page(body, page_url, name)
    if media in ("text/html", "application/vnd.pypi.simple.v1+html", "application/xhtml+xml", ""):
        return parse_html_page(body, page_url, name)
    raise UpstreamPageError(f"unexpected content type {media!r}")


def parse_json_page(body: bytes, page_url: str, name: str) -> UpstreamPage:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamPageError("invalid JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise UpstreamPageError("a PEP 691 page needs a list of files")
    files, skipped = [], 0
    for item in doc["files"]:
        parsed = _json_file(item, page_url) if isinstance(item, dict) else None
        if parsed is None:
            skipped += 1
        else:
            files.append(parsed)
    versions = doc.get("versions")
    if not (isinstance(versions, list) and all(isinstance(v, str) for v in versions)) or (files and not versions):
        versions = versions_of(files)
    return UpstreamPage(name, files, list(versions), skipped)


def _json_file(item: dict[str, Any], page_url: str) -> UpstreamFile | None:
    hashes = item.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    filename, url = item.get("filename"), item.get("url")
    if not isinstance(filename, str) or not isinstance(url, str) or not isinstance(sha256, str):
        return None
    size = item.get("size")
    upload_time = item.get("upload-time")
    requires_python = item.get("requires-python")
    yanked = item.get("yanked", False)
    metadata = item.get("core-metadata", item.get("dist-info-metadata"))
    return _file(
        filename, urljoin(page_url, url), sha256,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=upload_time if isinstance(upload_time, str) else None,
        requires_python=requires_python if isinstance(requires_python, str) and requires_python else None,
        yanked=yanked if isinstance(yanked, (bool, str)) else bool(yanked),
        metadata_sha256=metadata.get("sha256") if isinstance(metadata, dict) else None,
    )


def parse_html_page(body: bytes, page_url: str, name: str) -> UpstreamPage:
    parser = _AnchorParser()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except Exception as exc:  # noqa: BLE001 - html.parser raises assorted errors on garbage
        raise UpstreamPageError("unparsable HTML") from exc
    base = parser.base_href and urljoin(page_url, parser.base_href) or page_url
    files, skipped = [], 0
    for attrs, text in parser.anchors:
        parsed = _html_file(attrs, text, base)
        if parsed is None:
            skipped += 1
        else:
            files.append(parsed)
    return UpstreamPage(name, files, versions_of(files), skipped)


def _html_file(attrs: dict[str, str | None], text: str, base: str) -> UpstreamFile | None:
    href = attrs.get("href")
    if not href:
        return None
    url, fragment = urldefrag(urljoin(base, href))
    algo, _, digest = fragment.partition("=")
    if algo.lower() != "sha256":
        return None
    filename = text.strip() or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    meta_algo, _, meta_digest = (metadata or "").partition("=")
    yanked: bool | str = False
    if "data-yanked" in attrs:
        yanked = attrs["data-yanked"] or True
    return _file(filename, url, digest, requires_python=attrs.get("data-requires-python") or None, yanked=yanked,
                 metadata_sha256=meta_digest if meta_algo.lower() == "sha256" else None)


def _file(filename: str, url: str, sha256: str, **fields: Any) -> UpstreamFile | None:
    sha256 = sha256.lower()
    if not _SHA256_RE.match(sha256) or not servable_filename(filename):
        return None
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    meta = fields.get("metadata_sha256")
    fields["metadata_sha256"] = meta.lower() if isinstance(meta, str) and _SHA256_RE.match(meta.lower()) else None
    return UpstreamFile(filename=filename, url=urldefrag(url)[0], sha256=sha256, version=version_of(filename),
                        **fields)


def servable_filename(filename: str) -> bool:
    """A name that fits one URL path segment and cannot be taken for a `.metadata` request."""
    return (bool(filename) and filename not in (".", "..") and not _BAD_FILENAME_RE.search(filename)
            and not filename.endswith(".metadata") and len(filename) <= 255)


def versions_of(files: Iterable[UpstreamFile]) -> list[str]:
    """PEP 700 `versions` when upstream gave none: every version a filename names, in version order."""
    found = {Version(f.version) for f in files if f.version}
    return [str(v) for v in sorted(found)]


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.base_href: str | None = None
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base_href is None:
            self.base_href = dict(attrs).get("href")
        elif tag == "a":
            self._finish()
            self._current, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._finish()

    def close(self) -> None:
        super().close()
        self._finish()

    def _finish(self) -> None:
        if self._current is not None:
            self.anchors.append((self._current, "".join(self._text)))
            self._current = None
