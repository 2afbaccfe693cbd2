"""Simple pages rendered from the precomputed `simple_pages` documents, as pure functions.

Nothing here reads a request: the same inputs give the same bytes, so a page can be cached with its ETag.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from packaging.utils import canonicalize_version

from registry_shared.domain.simple import (
    HTML_TYPE,
    FileEntry,
    render_index_html,
    render_index_json,
    render_page_html,
    render_page_json,
    strong_etag,
)
from registry_shared.policy.evaluate import filter_entries
from registry_shared.records.pages import PackagePageDoc

from .policy import PagePolicy, count_withheld

HTML_HEADER = "text/html; charset=utf-8"


@dataclass(frozen=True)
class CachedPage:
    body: bytes
    etag: str
    content_type: str  # the Content-Type header value
    # The response headers, built once per page and caching policy by responses.simple_response.
    headers: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    # Epoch seconds when a file the policy withholds now matures: the page must not be served after it.
    expires_at: float | None = None


class PageState(Enum):
    """What the cache remembers when there is no page to serve."""

    ABSENT = "absent"  # the name is not in the scope: forwarding may apply
    HIDDEN = "hidden"  # the name is in the scope, but in no project this caller may read: never forward


def scope_root(base: str, scope_kind: str, scope_id: int) -> str:
    """`{BASE}/api/v4/projects/{id}/packages/pypi` or the group form; always the numeric id."""
    if scope_kind == "project":
        return f"{base}/api/v4/projects/{scope_id}/packages/pypi"
    return f"{base}/api/v4/groups/{scope_id}/-/packages/pypi"


def make_page(body: bytes, content_type: str) -> CachedPage:
    header = HTML_HEADER if content_type == HTML_TYPE else content_type
    return CachedPage(body=body, etag=strong_etag(body), content_type=header)


def index_page(title: str, names: Iterable[str], root: str, content_type: str) -> CachedPage:
    names = sorted(set(names))
    if content_type == HTML_TYPE:
        return make_page(render_index_html(title, names, f"{root}/simple"), content_type)
    return make_page(render_index_json(names), content_type)


def package_page(doc: PackagePageDoc, root: str, content_type: str,
                 readable: frozenset[int] | None, policy: PagePolicy | None = None) -> CachedPage | None:
    """A package page from its document, keeping only files of `readable` projects (None = all) that the
    policy offers now (SPEC §9).

    Returns None when no file is left for this caller before policy; a page whose files policy withholds
    all is still a page, with no files.
    """
    entries = doc.files
    merged = merge_group_files(entries, readable)
    if not merged:
        return None
    status, expires_at = None, None
    if policy is not None:
        status = policy.page_status(merged)
        source = [e for e in entries if not policy.quarantined(e)] if policy.statuses else entries
        if len(source) != len(entries):
            count_withheld({"quarantined": len(entries) - len(source)})
        filtered = filter_entries(doc.name, merge_group_files(source, readable), policy.policy_of, True, policy.now)
        count_withheld(filtered.withheld)
        merged, expires_at = filtered.kept, filtered.matures_at
    return render_files(doc.name, merged, doc.versions, len(merged) != len(entries), root, content_type, status,
                        expires_at)


def render_files(name: str, files: Sequence[FileEntry], all_versions: Sequence[str], changed: bool, root: str,
                 content_type: str, status: tuple[str, str] | None = None,
                 expires_at: float | None = None) -> CachedPage:
    files_base = f"{root}/files"
    if content_type == HTML_TYPE:
        page = make_page(render_page_html(name, files, files_base, status), content_type)
    else:
        versions = visible_versions(all_versions, files, changed=changed)
        page = make_page(render_page_json(name, files, files_base, versions, status), content_type)
    return page if expires_at is None else replace(page, expires_at=expires_at)


def merge_group_files(entries: Sequence[FileEntry], readable: frozenset[int] | None) -> list[FileEntry]:
    """Files of readable projects; for one filename in several projects the lowest project id wins.

    The documents' order is kept, so the page lists files as the worker ordered them.
    """
    winners: dict[str, FileEntry] = {}
    for entry in entries:
        if readable is not None and entry.project_id not in readable:
            continue
        current = winners.get(entry.filename)
        if current is None or _project_key(entry) < _project_key(current):
            winners[entry.filename] = entry
    return [e for e in entries if winners.get(e.filename) is e]


def visible_versions(versions: Sequence[str], entries: Sequence[FileEntry], changed: bool) -> list[str]:
    """The document's versions, minus those none of the served files belong to (PEP 700 `versions`)."""
    if not changed:
        return list(versions)
    present = {canonicalize_version(e.version) for e in entries}
    return [v for v in versions if canonicalize_version(v) in present]


def _project_key(entry: FileEntry) -> int:
    # Project documents carry no project_id on their entries in older documents; they are all one project.
    return entry.project_id if entry.project_id is not None else 0
