"""The simple repository API (PEP 503 HTML, PEP 691 JSON with PEP 700 fields), rendered from page models.

Pages are rendered once per change and cached; nothing here depends on the request.
"""
from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HTML_TYPE = "text/html"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
JSON_LATEST_TYPE = "application/vnd.pypi.simple.latest+json"
API_VERSION = "1.1"
API_VERSION_WITHOUT_SIZES = "1.0"  # PEP 700 makes `size` mandatory from 1.1 on
API_VERSION_WITH_STATUS = "1.4"  # PEP 792 `project-status`


@dataclass(frozen=True)
class FileEntry:
    """One installable file as a package page lists it."""

    filename: str
    sha256: str
    size: int
    upload_time: str  # ISO 8601, UTC, `Z` suffix
    version: str
    requires_python: str | None = None
    core_metadata_sha256: str | None = None
    yanked: bool | str = False
    project_id: int | None = None

    def to_doc(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> FileEntry:
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__ if k in doc})  # type: ignore[arg-type]


def file_url(files_base: str, entry: FileEntry) -> str:
    """`{files_base}/{sha256}/{filename}` with the `#sha256=` fragment pip verifies."""
    return f"{files_base}/{entry.sha256}/{entry.filename}#sha256={entry.sha256}"


def render_index_html(title: str, names: Iterable[str], simple_base: str) -> bytes:
    links = "".join(
        f'    <a href="{html.escape(f"{simple_base}/{n}", quote=True)}">{html.escape(n)}</a><br>\n' for n in names
    )
    return _html_document(f"Links for {title}", links)


def render_index_json(names: Iterable[str]) -> bytes:
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    return _json(doc)


def render_page_html(name: str, entries: Sequence[FileEntry], files_base: str,
                     status: tuple[str, str] | None = None) -> bytes:
    lines = []
    for e in entries:
        attrs = [f'href="{html.escape(file_url(files_base, e), quote=True)}"']
        if e.requires_python:
            attrs.append(f'data-requires-python="{html.escape(e.requires_python, quote=True)}"')
        if e.core_metadata_sha256:
            meta = html.escape(f"sha256={e.core_metadata_sha256}", quote=True)
            attrs.append(f'data-dist-info-metadata="{meta}" data-core-metadata="{meta}"')
        if e.yanked:
            reason = e.yanked if isinstance(e.yanked, str) else ""
            attrs.append(f'data-yanked="{html.escape(reason, quote=True)}"')
        lines.append(f"    <a {' '.join(attrs)}>{html.escape(e.filename)}</a><br>\n")
    return _html_document(f"Links for {name}", "".join(lines), status)


def render_page_json(name: str, entries: Sequence[FileEntry], files_base: str, versions: Sequence[str],
                     status: tuple[str, str] | None = None) -> bytes:
    files = []
    for e in entries:
        meta: dict[str, str] | bool = {"sha256": e.core_metadata_sha256} if e.core_metadata_sha256 else False
        item = {
            "filename": e.filename,
            "url": f"{files_base}/{e.sha256}/{e.filename}",
            "hashes": {"sha256": e.sha256},
            "requires-python": e.requires_python,
            "core-metadata": meta,
            "dist-info-metadata": meta,
            "yanked": e.yanked,
            "size": e.size,
            "upload-time": e.upload_time,
        }
        # Proxied files from an HTML-only upstream may have no known size or upload time: leave the keys
        # out rather than send nulls.
        files.append({k: v for k, v in item.items() if v is not None or k == "requires-python"})
    doc: dict[str, object] = {"meta": {"api-version": page_api_version(entries, status is not None)}, "name": name,
                              "versions": list(versions), "files": files}
    if status is not None:  # PEP 792
        doc["project-status"] = {"status": status[0], "reason": status[1]}
    return _json(doc)


def page_api_version(entries: Iterable[FileEntry], with_status: bool = False) -> str:
    """The api-version a JSON package page may declare: 1.1 only when every file has its `size`.

    PEP 700 makes `size` mandatory from 1.1 on, so a page with a file of unknown size (a proxied file from an
    upstream that did not say) declares 1.0, where `size` and `versions` are optional extras.
    """
    if not all(e.size is not None for e in entries):
        return API_VERSION_WITHOUT_SIZES
    return API_VERSION_WITH_STATUS if with_status else API_VERSION


def strong_etag(body: bytes) -> str:
    """A strong ETag derived from the exact bytes served."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


_OFFERS = {
    JSON_TYPE: JSON_TYPE,
    JSON_LATEST_TYPE: JSON_TYPE,
    HTML_TYPE: HTML_TYPE,
    "application/vnd.pypi.simple.v1+html": HTML_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
    "text/*": HTML_TYPE,
    "*/*": HTML_TYPE,
}


def choose_content_type(accept: str | None) -> str | None:
    """Pick HTML or PEP 691 JSON by the Accept header's q-values; None when nothing offered is acceptable.

    Higher q wins; on a tie a specific media type beats a wildcard, then the earlier entry wins.
    """
    if not accept or not accept.strip():
        return HTML_TYPE
    best: tuple[tuple[float, int, int], str] | None = None
    for position, item in enumerate(accept.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        q = 1.0
        for param in parts[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        chosen = _OFFERS.get(media)
        if chosen is None or q <= 0:
            continue
        rank = (q, 0 if "*" in media else 1, -position)
        if best is None or rank > best[0]:
            best = (rank, chosen)
    return best[1] if best else None


def _html_document(title: str, body: str, status: tuple[str, str] | None = None) -> bytes:
    t = html.escape(title)
    version = API_VERSION_WITH_STATUS if status else API_VERSION
    head = f'    <meta name="pypi:repository-version" content="{version}">\n'
    if status is not None:  # PEP 792
        head += (f'    <meta name="pypi:project-status" content="{html.escape(status[0], quote=True)}">\n'
                 f'    <meta name="pypi:project-status-reason" content="{html.escape(status[1], quote=True)}">\n')
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n" + head +
        f"    <title>{t}</title>\n  </head>\n  <body>\n    <h1>{t}</h1>\n{body}  </body>\n</html>\n"
    ).encode()


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
