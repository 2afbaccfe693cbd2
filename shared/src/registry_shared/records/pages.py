"""The `simple_pages` documents: a scope's index and one name's page, precomputed (contracts.md).

The metadata-worker and index-api's deletions write them (`registry_shared.pages`); index-api renders them
once per change and caches the result. Every write stamps a fresh random `rev` (compare-and-swap).

The lists of a document (a page's `files`, an index's `names`) are stored packed, each as one field of
zlib-compressed compact JSON (`files_z`, `names_z`): nx-27017's cost of reading and writing a document grows
with its nested elements, not its bytes (a page of 300 files: 8 ms to read and write as a list, under 2 ms
packed). The JSON is orjson's (the same bytes as the standard library's compact, non-ASCII form, which wrote
the earlier documents; 0.06 ms for 300 files instead of 1 ms). `packed` and `unpacked` convert at the
storage boundary, so everything above works on plain lists; a document written before packing (a plain
list) is read as it is and packed by its next write.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ..domain.simple import FileEntry
from .times import stored_time


def page_key(scope_kind: str, scope_id: int, name: str | None = None) -> str:
    """The `_id` of a precomputed simple document: a scope's index, or one name's page."""
    return f"{scope_kind}:{scope_id}" if name is None else f"{scope_kind}:{scope_id}:{name}"


# The packed lists: the plain field and the field that stores it packed.
PACKED_FIELDS = {"files": "files_z", "names": "names_z"}
_ZLIB_LEVEL = 1  # of 300 entries (110 KB of JSON), level 1 keeps 6 KB in a millisecond


def packed(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as stored: each list of PACKED_FIELDS as its packed field."""
    stored = {k: v for k, v in fields.items() if k not in PACKED_FIELDS}
    for plain, packed_field in PACKED_FIELDS.items():
        if plain in fields:
            stored[packed_field] = zlib.compress(orjson.dumps(fields[plain]), _ZLIB_LEVEL)
    return stored


def unpacked(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document with its packed fields as plain lists.

    A plain list wins over its packed field: every write of this version removes the plain list, so one
    that is there was written later, by a replica of an earlier version (during a rolling upgrade)."""
    if not any(packed_field in doc for packed_field in PACKED_FIELDS.values()):
        return doc
    plain = {k: v for k, v in doc.items() if k not in PACKED_FIELDS.values()}
    for field, packed_field in PACKED_FIELDS.items():
        if packed_field in doc and field not in doc:
            plain[field] = orjson.loads(zlib.decompress(doc[packed_field]))
    return plain


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
        doc = unpacked(doc)
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
        doc = unpacked(doc)
        kind, _, rest = str(doc["_id"]).partition(":")
        scope_id, _, name = rest.partition(":")
        return cls(scope_kind=doc.get("scope_kind") or kind, scope_id=int(doc.get("scope_id") or scope_id),
                   name=doc.get("name") or name, versions=tuple(doc.get("versions") or ()),
                   files=tuple(FileEntry.from_doc(f) for f in doc.get("files") or ()), rev=doc.get("rev"),
                   updated_at=stored_time(doc.get("updated_at")))
