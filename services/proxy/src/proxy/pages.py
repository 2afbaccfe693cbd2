"""What the proxy keeps of an upstream page, and that page rendered into a registry scope (pure functions).

A rendered page depends on the page (with the file sizes learned by HEAD requests where upstream gave
none), on what the proxy learned by downloading files (their sizes and the core metadata extracted from
cached wheels), on the scope whose URLs it carries and on the format; the same inputs give the same bytes,
so the ETag is stable across replicas.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from registry_shared.domain.simple import (
    HTML_TYPE,
    FileEntry,
    render_page_html,
    render_page_json,
    strong_etag,
)

from .upstream import UpstreamFile, UpstreamPage

HTML_HEADER = "text/html; charset=utf-8"
_SCOPE_RE = re.compile(r"^(project|group):([1-9][0-9]{0,17})$")


@dataclass(frozen=True)
class ProxiedPage:
    """One upstream name as last fetched: its files, or `found=False` for an upstream 404 (negative cache).

    `fetched_at` is epoch seconds (a float, not a datetime: nx-27017 returns `$set` datetimes as strings).
    `sizes` are the lengths upstream's files answered to a HEAD (by filename) where the page gave none: kept
    apart from the files, which hold only what the page said (a download is checked against that).
    """

    name: str
    found: bool
    fetched_at: float
    files: tuple[UpstreamFile, ...] = ()
    versions: tuple[str, ...] = ()
    etag: str | None = None  # the upstream's validator, for conditional revalidation
    sizes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_upstream(cls, page: UpstreamPage, fetched_at: float, etag: str | None,
                      previous: ProxiedPage | None = None) -> ProxiedPage:
        """The page as fetched, keeping the sizes learned for files it still lists unchanged."""
        sizes = {}
        if previous is not None and previous.sizes:
            before = {f.filename: f for f in previous.files}
            sizes = {f.filename: previous.sizes[f.filename] for f in page.files
                     if f.filename in previous.sizes and before.get(f.filename) == f}
        return cls(page.name, True, fetched_at, tuple(page.files), tuple(page.versions), etag, sizes)

    @classmethod
    def missing(cls, name: str, fetched_at: float) -> ProxiedPage:
        return cls(name, False, fetched_at)

    def to_doc(self) -> dict[str, Any]:
        # Sizes as pairs: a filename has dots, which MongoDB does not take in a key.
        return {"_id": self.name, "found": self.found, "fetched_at": self.fetched_at, "etag": self.etag,
                "versions": list(self.versions), "files": [f.to_doc() for f in self.files],
                "sizes": [[name, size] for name, size in sorted(self.sizes.items())]}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ProxiedPage:
        return cls(doc["_id"], bool(doc["found"]), float(doc["fetched_at"]),
                   tuple(UpstreamFile.from_doc(f) for f in doc.get("files") or ()),
                   tuple(doc.get("versions") or ()), doc.get("etag"),
                   {str(name): int(size) for name, size in doc.get("sizes") or ()})

    def unsized(self, learned: Mapping[str, Learned]) -> list[UpstreamFile]:
        """Files whose size nobody knows yet: not on the page, not learned by a HEAD, not stored."""
        return [f for f in self.files if f.size is None and f.filename not in self.sizes
                and learned.get(f.filename, Learned()).size is None]


@dataclass(frozen=True)
class Learned:
    """What the proxy knows of a file once it has stored it: its size, and core metadata it extracted."""

    size: int | None = None
    metadata_sha256: str | None = None


@dataclass(frozen=True)
class RenderedPage:
    body: bytes
    etag: str
    content_type: str  # the Content-Type header value


@dataclass(frozen=True)
class Scope:
    kind: str  # "project" | "group"
    id: int

    def files_base(self, base_url: str) -> str:
        """The scope's file URLs, exactly as index-api serves them (index_api.pages.scope_root + /files)."""
        if self.kind == "project":
            return f"{base_url}/api/v4/projects/{self.id}/packages/pypi/files"
        return f"{base_url}/api/v4/groups/{self.id}/-/packages/pypi/files"


def parse_scope(value: str | None) -> Scope | None:
    """`project:3` or `group:5`; None for anything else."""
    match = _SCOPE_RE.match(value or "")
    return Scope(match.group(1), int(match.group(2))) if match else None


def entries(page: ProxiedPage, learned: Mapping[str, Learned]) -> list[FileEntry]:
    """The page's files as the registry lists them. Core metadata is advertised only where it can be served:
    upstream advertised it with a hash, or the proxy extracted it from the stored wheel."""
    out = []
    for f in page.files:
        known = learned.get(f.filename, Learned())
        out.append(FileEntry(
            filename=f.filename, sha256=f.sha256,
            size=_size(f, known, page),  # type: ignore[arg-type]
            upload_time=f.upload_time,  # type: ignore[arg-type]
            version=f.version, requires_python=f.requires_python,
            core_metadata_sha256=f.metadata_sha256 or known.metadata_sha256, yanked=f.yanked,
        ))
    return out


def _size(f: UpstreamFile, known: Learned, page: ProxiedPage) -> int | None:
    """What the page said, else the stored file's (verified) length, else what a HEAD answered."""
    if f.size is not None:
        return f.size
    return known.size if known.size is not None else page.sizes.get(f.filename)


def render(page: ProxiedPage, learned: Mapping[str, Learned], files_base: str, content_type: str) -> RenderedPage:
    files = entries(page, learned)
    if content_type == HTML_TYPE:
        body = render_page_html(page.name, files, files_base)
        return RenderedPage(body, strong_etag(body), HTML_HEADER)
    body = render_page_json(page.name, files, files_base, page.versions)
    return RenderedPage(body, strong_etag(body), content_type)
