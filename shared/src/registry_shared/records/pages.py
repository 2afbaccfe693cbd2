"""The `simple_pages` documents: a scope's index and one name's page, precomputed (contracts.md).

The metadata-worker and index-api's deletions write them (`registry_shared.pages`); index-api renders them
once per change and caches the result. Every write stamps a fresh random `rev` (compare-and-swap).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.simple import FileEntry
from .times import stored_time


def page_key(scope_kind: str, scope_id: int, name: str | None = None) -> str:
    """The `_id` of a precomputed simple document: a scope's index, or one name's page."""
    return f"{scope_kind}:{scope_id}" if name is None else f"{scope_kind}:{scope_id}:{name}"


@dataclass(frozen=True, slots=True)
class ScopeIndexDoc:
    """A scope's index: `_id` `<project|group>:<id>`, the normalised names it lists, sorted."""

    scope_kind: str
    scope_id: int
    names: tuple[str, ...]
    rev: str | None = None  # None: written before revisions existed (or not yet written)
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return page_key(self.scope_kind, self.scope_id)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ScopeIndexDoc:
        kind, _, scope_id = str(doc["_id"]).partition(":")
        return cls(scope_kind=doc.get("scope_kind") or kind, scope_id=int(doc.get("scope_id") or scope_id),
                   names=tuple(doc.get("names") or ()), rev=doc.get("rev"),
                   updated_at=stored_time(doc.get("updated_at")))


@dataclass(frozen=True, slots=True)
class PackagePageDoc:
    """One name's page in a scope: `_id` `<project|group>:<id>:<name>`, its files in page order (by version,
    filename, project) and its versions in PEP 440 order. A group's page holds the files of every
    descendant project, each entry with its `project_id`."""

    scope_kind: str
    scope_id: int
    name: str
    versions: tuple[str, ...]
    files: tuple[FileEntry, ...]
    rev: str | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        return page_key(self.scope_kind, self.scope_id, self.name)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PackagePageDoc:
        kind, _, rest = str(doc["_id"]).partition(":")
        scope_id, _, name = rest.partition(":")
        return cls(scope_kind=doc.get("scope_kind") or kind, scope_id=int(doc.get("scope_id") or scope_id),
                   name=doc.get("name") or name, versions=tuple(doc.get("versions") or ()),
                   files=tuple(FileEntry.from_doc(f) for f in doc.get("files") or ()), rev=doc.get("rev"),
                   updated_at=stored_time(doc.get("updated_at")))
