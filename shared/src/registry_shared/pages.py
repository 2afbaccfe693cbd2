"""The precomputed simple documents (contracts.md, `simple_pages`), rebuilt from `distributions`.

Shared because two services write them: the metadata-worker after indexing a file, and index-api after
a deletion (E13), which must rebuild every scope's pages before it answers.

A file appears in its project's documents and in those of every ancestor group. `rebuild_scopes` is
the one entry point, usable after an upload (one name) or a deletion (the names that lost files).

Concurrency: two workers indexing two files of one name at once could each write a page missing the
other's file. Each rebuild therefore writes only what differs from the stored document and then
checks again, until a full pass finds every document equal to what the files say. The last writer of
any document always re-reads the files after its write, so the final state includes every file that
was installable before that re-read; later files are added by their own worker's rebuild.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from .adapters.mongo import Mongo
from .adapters.packages import INSTALLABLE, PackageRepository
from .domain.simple import FileEntry
from .events import Scope

MAX_PASSES = 5
# What a page needs from a `distributions` document (never the description).
_PAGE_FIELDS = {k: 1 for k in ("filename", "sha256", "size", "created_at", "version", "canonical_version",
                                "requires_python", "metadata_sha256", "yanked", "project_id")}


class PagesUnstable(Exception):
    """The documents kept changing under us; the caller should retry later (transient)."""


# -- pure rules --------------------------------------------------------------------------------

def scopes_of(project: dict[str, Any]) -> list[Scope]:
    """The scopes a project's files appear in: the project, then each ancestor group (root first)."""
    return [Scope(kind="project", id=int(project["_id"])),
            *(Scope(kind="group", id=int(g)) for g in project.get("ancestor_ids") or [])]


def version_key(version: str) -> tuple[int, Any]:
    """PEP 440 order; a string that does not parse sorts after every valid version, by text."""
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version.lower())


def upload_time(value: object) -> str:
    """PEP 700 `upload-time`: ISO 8601 in UTC with a `Z` suffix."""
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_entry(doc: dict[str, Any]) -> FileEntry:
    """A `distributions` document as a page lists it."""
    return FileEntry(
        filename=doc["filename"],
        sha256=doc["sha256"],
        size=int(doc.get("size") or 0),
        upload_time=upload_time(doc.get("created_at")),
        version=doc["version"],
        requires_python=doc.get("requires_python") or None,
        core_metadata_sha256=doc.get("metadata_sha256") or None,
        yanked=doc.get("yanked") or False,
        project_id=int(doc["project_id"]),
    )


def build_page(docs: Iterable[dict[str, Any]]) -> tuple[list[FileEntry], list[str]]:
    """Entries sorted by version, then filename, then project; and the distinct versions in PEP 440 order.

    `1.0` and `1.0.0` are one release: it is listed once, spelled as its earliest file spelled it.
    """
    docs = list(docs)
    ordered = sorted(docs, key=lambda d: (version_key(d["version"]), d["filename"], int(d["project_id"])))
    first_by_release: dict[str, dict[str, Any]] = {}
    for doc in sorted(docs, key=lambda d: int(d["_id"])):
        first_by_release.setdefault(doc.get("canonical_version") or doc["version"], doc)
    versions = sorted((d["version"] for d in first_by_release.values()), key=version_key)
    return [file_entry(d) for d in ordered], versions


# -- the rebuild -------------------------------------------------------------------------------

class PageBuilder:
    """Recomputes and stores the simple documents of a project's scopes."""

    def __init__(self, mongo: Mongo, packages: PackageRepository) -> None:
        self.mongo = mongo
        self.packages = packages

    async def rebuild_project(self, project_id: int, names: Sequence[str]) -> list[Scope]:
        """`rebuild_scopes` for a project id (a project that no longer exists has only its own scope)."""
        project = await self.mongo.projects.find_one({"_id": project_id}, {"ancestor_ids": 1})
        return await self.rebuild_scopes(project or {"_id": project_id, "ancestor_ids": []}, names)

    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]:
        """Rebuild the pages of `names` and the index of the project and each ancestor group.

        Returns the scopes, for the `index.changed` event. Raises PagesUnstable if concurrent writers
        kept the documents moving for MAX_PASSES passes.
        """
        scopes = scopes_of(project)
        members = {scope: await self._project_ids(scope) for scope in scopes}
        for _ in range(MAX_PASSES):
            changed = False
            for scope in scopes:
                for name in names:
                    changed |= await self._sync_page(scope, members[scope], name)
                changed |= await self._sync_index(scope, members[scope])
            if not changed:
                return scopes
        raise PagesUnstable(f"simple documents of project {project['_id']} did not settle")

    async def _project_ids(self, scope: Scope) -> list[int]:
        if scope.kind == "project":
            return [scope.id]
        # `$in` rather than `{"ancestor_ids": id}`: nx-27017 0.8.1 answers an element-equality match on an
        # indexed array field with nothing; `$in` means the same on MongoDB and works on both.
        query = {"ancestor_ids": {"$in": [scope.id]}}
        return [int(doc["_id"]) async for doc in self.mongo.projects.find(query, {"_id": 1})]

    async def _sync_page(self, scope: Scope, project_ids: list[int], name: str) -> bool:
        query = {"project_id": {"$in": project_ids}, "name": name, "state": INSTALLABLE}
        docs = [doc async for doc in self.mongo.distributions.find(query, _PAGE_FIELDS)]
        entries, versions = build_page(docs)
        stored = await self.packages.get_page(scope.kind, scope.id, name)
        wanted = [e.to_doc() for e in entries]
        if stored is None and not entries:
            return False
        if stored is not None and stored.get("files") == wanted and stored.get("versions") == versions:
            return False
        await self.packages.put_page(scope.kind, scope.id, name, entries, versions)
        return True

    async def _sync_index(self, scope: Scope, project_ids: list[int]) -> bool:
        query = {"project_id": {"$in": project_ids}, "state": INSTALLABLE}
        names = sorted({doc["name"] async for doc in self.mongo.distributions.find(query, {"name": 1})})
        stored = await self.packages.get_page(scope.kind, scope.id)
        if stored is not None and stored.get("names") == names:
            return False
        await self.packages.put_index(scope.kind, scope.id, names)
        return True
