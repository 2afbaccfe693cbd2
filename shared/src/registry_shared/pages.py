"""The precomputed simple documents (contracts.md, `simple_pages`), kept equal to `distributions`.

Shared because two services write them: the metadata-worker after indexing a file (`index_file`), and
index-api after a deletion (E13, `rebuild_scopes`), which must rebuild every scope's pages before it answers.

A file appears in its project's documents and in those of every ancestor group.

- `index_file` (the upload path) is incremental: it adds the one file's entry to its name's page in each
  scope, and the name to each scope's index when it is missing, reading only those documents and the
  file. Its cost does not grow with the number of files in the scope.
- `rebuild_scopes` recomputes the pages of some names from their files (one query for every scope) and
  adds or removes those names in each index.

Concurrency: every write is a compare-and-swap on the document's random `rev`
(`PackageRepository.swap_page`), made after reading the document and the files: a writer whose read
went stale in between fails and starts over, so no writer overwrites what it has not seen, and the
entries and names it carries over unchanged are exactly those the previous writer left. Each file's
entry, and each name in an index, is therefore decided by the last writer that looked at that file's
state, after that state changed: the uploading worker for its own file, a deletion for every file of the
name. Two gaps remain and are closed by re-reading after the writes: a deletion leaves a page absent
without writing (nothing to swap), and an upload skips an index that already lists its name (and a page
that already lists its entry: a redelivery; whoever listed it had seen the file installable). So the
upload re-reads its own file after its writes (a deletion that began in between is finished by a full
rebuild), and `rebuild_scopes` first writes every document, then repeats until a pass finds every
document equal to what the files say. An upload sends a pass's writes together
(`PackageRepository.swap_pages`); when it cannot tell which of them were written, it counts none as
written, and the next pass reads them all again, like after any failed swap (that pass reads the file
too, after the writes, so it stands for the re-read even when it finds nothing left to write).

A builder may remember the documents it wrote last (`remember_entries`, the metadata-worker's): the next
file of that name then skips reading its pages, and the next new name skips reading the indexes. That
changes nothing above: a remembered document is a read like any other, used only for a compare-and-swap,
which fails if anyone wrote the document since (its `rev` changed), so a pass writes every remembered
document it uses: a page (unless a redelivery finds its entry listed; it is then read), an index that does
not list the name, and one that does, written again unchanged. A name a remembered index does not list is
new to that scope, so its page there is taken to be absent without reading it: the write is then an
insert, a compare-and-swap against absence that fails if the page exists after all.

The re-read is skipped when a first delivery's first pass worked only from documents remembered before
its file became installable (`installed_at`), reading none: a deletion of the file can only begin after
that, and its rebuild's first pass writes every index of the project's scopes, each of which this pass
swaps, so one of this pass's swaps fails and the next pass reads the file again.
"""
from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from .adapters.mongo import Mongo
from .adapters.packages import INSTALLABLE, PackageRepository, new_revision, page_key
from .domain.simple import FileEntry
from .events import Scope
from .records.files import FileState, StoredFile

# Passes before PagesUnstable (the caller retries later). A pass repeats when a compare-and-swap met another
# writer; each such repeat first waits a random moment that grows with the attempt, so that concurrent
# writers of one document do not keep colliding.
MAX_PASSES = 20
CONFLICT_BACKOFF = 0.002  # seconds, times the attempt number, at most
MAX_REMEMBERED_PROJECTS = 10_000  # projects whose ancestors PageBuilder keeps (all forgotten when full)
_EPOCH = datetime.min.replace(tzinfo=UTC)
# What a page needs from a `distributions` document (never the description).
_PAGE_FIELDS = {k: 1 for k in ("filename", "sha256", "size", "created_at", "version", "canonical_version",
                                "requires_python", "metadata_sha256", "yanked", "project_id")}


# Announces that the documents of some scopes changed (the metadata-worker's `index.changed`).
Announce = Callable[[list[Scope]], Awaitable[None]]


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


def file_entry(file: StoredFile) -> FileEntry:
    """A `distributions` document as a page lists it."""
    return FileEntry(
        filename=file.filename,
        sha256=file.sha256,
        size=file.size,
        upload_time=upload_time(file.created_at),
        version=file.version,
        requires_python=file.requires_python or None,
        core_metadata_sha256=file.metadata_sha256 or None,
        yanked=file.yanked or False,
        project_id=file.project_id,
    )


def build_page(files: Iterable[StoredFile]) -> tuple[list[FileEntry], list[str]]:
    """Entries sorted by version, then filename, then project; and the distinct versions in PEP 440 order.

    `1.0` and `1.0.0` are one release: it is listed once, spelled as its earliest file spelled it.
    """
    files = list(files)
    ordered = sorted(files, key=lambda f: (version_key(f.version), f.filename, f.project_id))
    first_by_release: dict[str, StoredFile] = {}
    # Ids come in blocks per process (adapters.mongo.ID_BLOCKS), so "earliest" goes by the reservation time.
    for file in sorted(files, key=lambda f: (f.created_at or _EPOCH, f.id)):
        first_by_release.setdefault(file.canonical_version or file.version, file)
    versions = sorted((f.version for f in first_by_release.values()), key=version_key)
    return [file_entry(f) for f in ordered], versions


# -- the rebuild -------------------------------------------------------------------------------

class PageBuilder:
    """Computes and stores the simple documents of a project's scopes."""

    def __init__(self, mongo: Mongo, packages: PackageRepository, remember_entries: int = 0) -> None:
        self.mongo = mongo
        self.packages = packages
        # The simple documents this builder wrote last, as written (with their `rev`): the next file of the
        # same name needs no read of its pages, nor a new name of the indexes. Only ever used through a
        # compare-and-swap, which fails if another writer came since (then the document is read). Bounded by
        # the entries they hold (a document counts 1, plus its files or names), the oldest forgotten first;
        # 0: none (a process that rarely writes the same documents).
        self.remember_entries = remember_entries
        self._pages: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._remembered_at: dict[str, float] = {}  # key -> time.monotonic() when written
        self._weights: dict[str, int] = {}
        self._entries = 0
        # A project's ancestors are set when it is created and never change (there is no project transfer):
        # remembered, so indexing a file does not look them up each time.
        self._ancestors: dict[int, dict[str, Any]] = {}

    async def _project(self, project_id: int) -> dict[str, Any]:
        """The project's ancestors (a project that no longer exists has only its own scope)."""
        if (known := self._ancestors.get(project_id)) is not None:
            return known
        project = await self.mongo.projects.find_one({"_id": project_id}, {"ancestor_ids": 1})
        if project is None:
            return {"_id": project_id, "ancestor_ids": []}
        if len(self._ancestors) >= MAX_REMEMBERED_PROJECTS:
            self._ancestors.clear()
        self._ancestors[project_id] = project
        return project

    async def index_file(self, project_id: int, file_id: int, name: str, file: StoredFile | None = None,
                         announce: Announce | None = None, installed_at: float | None = None) -> list[Scope]:
        """List one newly installable file: its entry on the page of `name`, and `name` in the index, in each
        of the project's scopes. Returns the scopes, for the `index.changed` event.

        `file`: the file's document as the caller just made it installable (the page fields at least), so the
        first pass does not read it again; a deletion that began since is caught by the re-read after the
        writes, as one that begins during the first pass's read would be.

        `announce`: called with the scopes once the documents are written (and again after a rebuild), so
        the re-read after the writes overlaps the announcement; when it returns, the last call has.

        `installed_at`: when (`time.monotonic()`) the caller began making `file` installable, for a first
        delivery: a first pass working only from documents remembered before then needs no re-read.

        Falls back to `rebuild_scopes` when the file is no longer installable, or when another file spells
        the same release differently (which spelling a page shows depends on every file of the release).
        """
        scopes, announced = await self._index_file(project_id, file_id, name, file, announce, installed_at)
        if announce is not None and not announced:
            await announce(scopes)
        return scopes

    async def _index_file(self, project_id: int, file_id: int, name: str, file: StoredFile | None,
                          announce: Announce | None, installed_at: float | None) -> tuple[list[Scope], bool]:
        """index_file's work: (the scopes, whether `announce` was called with them)."""
        project = await self._project(project_id)
        scopes = scopes_of(project)
        keys = [page_key(scope.kind, scope.id, n) for scope in scopes for n in (name, None)]
        known = file if file is not None and file.state is FileState.INSTALLABLE else None
        recall = True  # use the documents this builder wrote last (a pass after a conflict reads every one)
        for attempt in range(MAX_PASSES):
            recalled = self._recall(keys) if recall else {}
            # A remembered index without the name: the name is new to that scope, so its page is taken to be
            # absent, unread; a guess the write checks (it inserts, which fails if the page exists).
            guessed = {page_key(s.kind, s.id, name) for s in scopes
                       if name not in recalled.get(page_key(s.kind, s.id), {"names": [name]})["names"]}
            trusted = recalled.keys() | guessed
            reading = [key for key in keys if key not in trusted]
            # Every document known from before the file was installable: a deletion would fail a swap.
            settled = (known is not None and installed_at is not None and not reading
                       and all(self._remembered_at[key] < installed_at for key in recalled))
            doc: StoredFile | None
            if known is not None:
                fresh, doc = await self.packages.get_pages(reading), known
                known = None  # a pass that repeats reads the file again
            else:
                # Read together: a deletion marking the file in between is caught by the re-read after the
                # writes.
                fresh, doc = await asyncio.gather(self.packages.get_pages(reading), self._installable_file(file_id))
            stored = {**recalled, **fresh}
            if doc is None:
                return await self.rebuild_scopes(project, [name]), False
            entry = file_entry(doc)
            writes: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = []
            for scope in scopes:
                page = stored.get(page_key(scope.kind, scope.id, name))
                added = add_entry(page, entry)
                if added is None:
                    return await self.rebuild_scopes(project, [name]), False
                wanted = _page_fields(scope, name, *added)
                if not _same(page, wanted):  # equal only when a redelivery finds its entry listed
                    writes.append((page_key(scope.kind, scope.id, name), page, wanted))
                index_key = page_key(scope.kind, scope.id)
                index = stored.get(index_key)
                if index is None or name not in index.get("names", []):
                    names = sorted({*(index or {}).get("names", []), name})
                    writes.append((index_key, index, _index_fields(scope, names)))
                elif index_key in recalled:
                    # Remembered and listing the name: written again as it is, so that its compare-and-swap
                    # checks it in the same round trip (a read would cost one more before the writes).
                    writes.append((index_key, index, _index_fields(scope, index["names"])))
            if trusted - {key for key, _, _ in writes}:
                # A remembered or guessed document is trusted only through the compare-and-swap of a write:
                # read it instead.
                recall = False
                continue
            if not writes:
                return scopes, False
            stamps = [new_revision() for _ in writes]
            done = await self.packages.swap_pages(writes, stamps)  # one round trip
            for (key, _, fields), stamp, ok in zip(writes, stamps, done, strict=True):
                self._remember(key, {"_id": key, **fields, **stamp} if ok else None)
            if not all(done):
                recall = False
                if not any(key in trusted for (key, _, _), ok in zip(writes, done, strict=True) if not ok):
                    await _back_off(attempt)  # another writer, not a document remembered from before it
                continue
            if settled:
                if announce is not None:
                    await announce(scopes)
                return scopes, announce is not None
            # A deletion that marked the file after our read may have found nothing to change yet: read the
            # file again (while the change is announced, if we announce it), and if so, rebuild.
            if announce is None:
                still = await self._installable_file(file_id)
            else:
                still, _ = await asyncio.gather(self._installable_file(file_id), announce(scopes))
            if still is None:
                return await self.rebuild_scopes(project, [name]), False
            return scopes, announce is not None
        raise PagesUnstable(f"simple documents of project {project_id} did not settle")

    def _recall(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The remembered documents among `keys`. A pass writes each one it uses, so each is checked by its
        compare-and-swap: every page (unless a redelivery finds its entry listed; the pass then reads it),
        each index that does not list the name, and each that does, written again unchanged."""
        return {key: doc for key in keys if (doc := self._pages.get(key)) is not None}

    def _remember(self, key: str, doc: dict[str, Any] | None) -> None:
        """Keep the document this builder just wrote (None: forget it), the most recent within
        `remember_entries`."""
        self._forget(key)
        weight = 1 + len(doc.get("files", ())) + len(doc.get("names", ())) if doc is not None else 0
        if doc is None or weight > self.remember_entries:
            return
        self._pages[key], self._remembered_at[key], self._weights[key] = doc, time.monotonic(), weight
        self._entries += weight
        while self._entries > self.remember_entries:
            self._forget(next(iter(self._pages)))

    def _forget(self, key: str) -> None:
        if self._pages.pop(key, None) is not None:
            self._remembered_at.pop(key, None)
            self._entries -= self._weights.pop(key)

    async def rebuild_scopes(self, project: dict[str, Any], names: Sequence[str]) -> list[Scope]:
        """Recompute the pages of `names` and their presence in the index of the project and each ancestor
        group from the installable files.

        Returns the scopes, for the `index.changed` event. Raises PagesUnstable if concurrent writers
        kept the documents moving for MAX_PASSES passes.
        """
        scopes = scopes_of(project)
        members = await self._members(project, scopes)
        everyone = sorted(set().union(*members.values()))
        keys = [page_key(s.kind, s.id, n) for s in scopes for n in [*names, None]]
        name_query: Any = names[0] if len(names) == 1 else {"$in": list(names)}
        first = True
        for attempt in range(MAX_PASSES):
            stored = await self.packages.get_pages(keys)
            query = {"project_id": {"$in": everyone}, "name": name_query, "state": INSTALLABLE}
            docs = [StoredFile.from_doc(doc)
                    async for doc in self.mongo.distributions.find(query, {**_PAGE_FIELDS, "name": 1, "state": 1})]
            changed = conflict = False
            for scope in scopes:
                listed = {name: [d for d in docs if d.name == name and d.project_id in members[scope]]
                          for name in names}
                for name, files in listed.items():
                    entries, versions = build_page(files)
                    wanted = _page_fields(scope, name, [e.to_doc() for e in entries], versions) if entries else None
                    key = page_key(scope.kind, scope.id, name)
                    if first or not _same(stored.get(key), wanted):
                        changed = True
                        self._remember(key, None)
                        conflict |= not await self.packages.swap_page(key, stored.get(key), wanted)
                index = stored.get(page_key(scope.kind, scope.id))
                present = {name for name, files in listed.items() if files}
                names_now = sorted((set((index or {}).get("names", [])) - set(names)) | present)
                wanted = _index_fields(scope, names_now)
                # Written on the first pass even when unchanged: an upload that skips reading its file again
                # (index_file's `installed_at`) relies on a deletion changing every index's `rev`.
                if first or not _same(index, wanted):
                    changed = True
                    self._remember(page_key(scope.kind, scope.id), None)
                    conflict |= not await self.packages.swap_page(page_key(scope.kind, scope.id), index, wanted)
            if not changed:
                return scopes
            first = False
            if conflict:
                await _back_off(attempt)
        raise PagesUnstable(f"simple documents of project {project['_id']} did not settle")

    async def _installable_file(self, file_id: int) -> StoredFile | None:
        doc = await self.mongo.distributions.find_one({"_id": file_id}, {**_PAGE_FIELDS, "state": 1})
        file = StoredFile.from_doc(doc) if doc is not None else None
        return file if file is not None and file.state is FileState.INSTALLABLE else None

    async def _members(self, project: dict[str, Any], scopes: list[Scope]) -> dict[Scope, set[int]]:
        """The projects whose files each scope lists: the project itself; every project under a group."""
        members = {scope: {scope.id} if scope.kind == "project" else set() for scope in scopes}
        groups = {scope.id: scope for scope in scopes if scope.kind == "group"}
        if groups:
            # `$in` rather than `{"ancestor_ids": id}`: nx-27017 0.8.1 answers an element-equality match on an
            # indexed array field with nothing; `$in` means the same on MongoDB and works on both.
            query = {"ancestor_ids": {"$in": list(groups)}}
            async for doc in self.mongo.projects.find(query, {"ancestor_ids": 1}):
                for group_id in doc.get("ancestor_ids") or []:
                    if group_id in groups:
                        members[groups[group_id]].add(int(doc["_id"]))
        return members


async def _back_off(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, CONFLICT_BACKOFF * (attempt + 1)))


def add_entry(page: dict[str, Any] | None, entry: FileEntry) -> tuple[list[dict[str, Any]], list[str]] | None:
    """A stored page's files and versions with `entry` added (or replaced: same filename and project), in
    `build_page`'s order; None if the page already spells the entry's release differently."""
    files = [f for f in (page or {}).get("files", [])
             if not (f["filename"] == entry.filename and f.get("project_id") == entry.project_id)]
    bisect.insort(files, entry.to_doc(), key=_file_order)
    versions = list((page or {}).get("versions", []))
    # One spelling per release, in version_key order, where two spellings of a release compare equal.
    release = version_key(entry.version)
    at = bisect.bisect_left(versions, release, key=version_key)
    if at == len(versions) or version_key(versions[at]) != release:
        versions.insert(at, entry.version)
    elif versions[at] != entry.version:
        return None
    return files, versions


def _file_order(doc: dict[str, Any]) -> tuple[tuple[int, Any], str, int]:
    return version_key(doc["version"]), doc["filename"], int(doc["project_id"])


def _page_fields(scope: Scope, name: str, files: list[dict[str, Any]], versions: list[str]) -> dict[str, Any]:
    return {"scope_kind": scope.kind, "scope_id": scope.id, "name": name, "versions": versions, "files": files}


def _index_fields(scope: Scope, names: list[str]) -> dict[str, Any]:
    return {"scope_kind": scope.kind, "scope_id": scope.id, "names": names}


def _same(stored: dict[str, Any] | None, wanted: dict[str, Any] | None) -> bool:
    if stored is None or wanted is None:
        return stored is None and wanted is None
    return all(stored.get(k) == v for k, v in wanted.items())
