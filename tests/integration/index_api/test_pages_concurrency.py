"""The precomputed simple documents under concurrent writers (registry_shared.pages): workers indexing
files of one name and of new names at once, and a deletion racing them, leave every document equal to a
rebuild from the files."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from registry_shared.adapters.packages import INSTALLABLE, PackageRepository, page_key
from registry_shared.pages import PageBuilder, build_page, scopes_of
from registry_shared.records.files import StoredFile
from tests.integration.index_api.index_support import Seeder
from tests.support.pages import simple_documents


async def expected_documents(seed: Seeder, projects: list[dict[str, Any]]) -> dict[str, Any]:
    """What every scope's documents must hold, recomputed from the installable files."""
    docs = [StoredFile.from_doc(d) async for d in seed.mongo.distributions.find({"state": INSTALLABLE})]
    wanted: dict[str, Any] = {}
    for project in projects:
        for scope in scopes_of(project):
            members = {p["_id"] for p in projects if scope.kind == "group" and scope.id in p["ancestor_ids"]}
            if scope.kind == "project":
                members.add(project["_id"])
            listed = [d for d in docs if d.project_id in members]
            names = sorted({d.name for d in listed})
            wanted[page_key(scope.kind, scope.id)] = names
            for name in names:
                entries, versions = build_page(d for d in listed if d.name == name)
                wanted[page_key(scope.kind, scope.id, name)] = ([e.to_doc() for e in entries], versions)
    return wanted


async def stored_documents(seed: Seeder) -> dict[str, Any]:
    return {key: doc["names"] if "names" in doc else (doc["files"], doc["versions"])
            for key, doc in (await simple_documents(seed.mongo)).items()}


async def test_concurrent_uploads_and_a_deletion_leave_the_documents_equal_to_the_files(seed: Seeder) -> None:
    builder = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
    await seed.group("race", "public")
    await seed.group("race/sub", "public")
    one = await seed.project("race/one", "public")
    two = await seed.project("race/sub/two", "public")
    doomed = await seed.add_file(one, "gone-1.0.tar.gz", b"gone", name="gone", version="1.0")
    await builder.rebuild_scopes(one, ["gone"])
    uploads = []
    for n in range(6):
        for project in (one, two):
            await seed.add_file(project, f"shared-{n}.0.tar.gz", f"{project['_id']}{n}".encode(), name="shared",
                                version=f"{n}.0")
            await seed.add_file(project, f"new{n}-1.0.tar.gz", f"{project['_id']}new{n}".encode(), name=f"new{n}",
                                version="1.0")
    async for doc in seed.mongo.distributions.find({"name": {"$ne": "gone"}}):
        uploads.append(builder.index_file(doc["project_id"], doc["_id"], doc["name"]))
    gone = await seed.packages.find_file(one["_id"], doomed.filename)

    async def delete() -> None:
        await seed.mongo.distributions.update_one({"_id": gone.id}, {"$set": {"state": "deleting"}})
        await builder.rebuild_scopes(one, ["gone"])

    await asyncio.gather(*uploads, delete())
    assert await stored_documents(seed) == await expected_documents(seed, [one, two])


async def test_builders_remembering_their_pages_never_overwrite_what_another_wrote(seed: Seeder) -> None:
    """Two workers' builders, each keeping the pages it wrote (the metadata-worker's `remember_entries`), take
    turns on one name, with a deletion (a builder that remembers nothing) in between: a remembered page is
    stale after the other's write, and its compare-and-swap must fail and be read again, never win."""
    first = PageBuilder(seed.mongo, PackageRepository(seed.mongo), remember_entries=64)
    second = PageBuilder(seed.mongo, PackageRepository(seed.mongo), remember_entries=64)
    deleter = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
    await seed.group("turns", "public")
    project = await seed.project("turns/app", "public")

    async def upload(builder: PageBuilder, n: int) -> None:
        await seed.add_file(project, f"turn-{n}.0.tar.gz", f"turn{n}".encode(), name="turn", version=f"{n}.0")
        doc = await seed.packages.find_file(project["_id"], f"turn-{n}.0.tar.gz")
        assert doc is not None
        await builder.index_file(project["_id"], doc.id, "turn", doc)

    for n, builder in enumerate((first, first, second, first, second, second, first)):
        await upload(builder, n)
        if n == 3:  # a deletion rewrites the pages behind both builders' backs
            gone = await seed.packages.find_file(project["_id"], "turn-1.0.tar.gz")
            await seed.mongo.distributions.update_one({"_id": gone.id}, {"$set": {"state": "deleting"}})
            await deleter.rebuild_scopes(project, ["turn"])
        assert await stored_documents(seed) == await expected_documents(seed, [project]), n
    assert first._pages and second._pages  # they did remember (and were corrected through the swap)

    # Racing, both remembering, then checked against the files.
    await asyncio.gather(*(upload(builder, n) for n, builder in zip(range(10, 20), [first, second] * 5, strict=True)))
    assert await stored_documents(seed) == await expected_documents(seed, [project])


class ReadingRepository(PackageRepository):
    """The real repository, recording the keys each read of simple documents asked for."""

    def __init__(self, mongo: Any) -> None:
        super().__init__(mongo)
        self.reads: list[list[str]] = []

    async def get_pages(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(list(keys))
        return await super().get_pages(keys)


class CheckingBuilder(PageBuilder):
    """The real builder, counting its reads of the file after the writes."""

    rereads = 0

    async def _installable_file(self, file_id: int) -> StoredFile | None:
        self.rereads += 1
        return await super()._installable_file(file_id)


async def upload(seed: Seeder, builder: PageBuilder, project: dict[str, Any], name: str, version: str) -> None:
    """A file made installable and indexed by `builder`, as the metadata-worker does."""
    installed_at = time.monotonic()
    await seed.add_file(project, f"{name}-{version}.tar.gz", f"{name}{version}".encode(), name=name, version=version)
    doc = await seed.packages.find_file(project["_id"], f"{name}-{version}.tar.gz")
    assert doc is not None
    await builder.index_file(project["_id"], doc.id, name, doc, installed_at=installed_at)


async def test_a_new_name_uses_the_remembered_indexes_without_reading_them(seed: Seeder) -> None:
    repository = ReadingRepository(seed.mongo)
    builder = PageBuilder(seed.mongo, repository, remember_entries=64)
    await seed.group("fresh", "public")
    project = await seed.project("fresh/app", "public")
    await upload(seed, builder, project, "first", "1.0")
    repository.reads.clear()

    await upload(seed, builder, project, "second", "1.0")

    # Neither the indexes (remembered without "second") nor the new name's pages (absent from them) are read.
    assert [key for keys in repository.reads for key in keys] == []
    assert await stored_documents(seed) == await expected_documents(seed, [project])


async def test_a_remembered_index_another_writer_changed_fails_its_swap_and_is_read(seed: Seeder) -> None:
    repository = ReadingRepository(seed.mongo)
    builder = PageBuilder(seed.mongo, repository, remember_entries=64)
    other = PageBuilder(seed.mongo, PackageRepository(seed.mongo), remember_entries=64)
    await seed.group("busy", "public")
    project = await seed.project("busy/app", "public")
    await upload(seed, builder, project, "mine", "1.0")
    await upload(seed, other, project, "theirs", "1.0")  # rewrites both indexes behind the builder's back
    repository.reads.clear()

    await upload(seed, builder, project, "later", "1.0")

    # The first pass trusted the stale indexes and its swaps failed; the next pass read them.
    indexes = {page_key(s.kind, s.id) for s in scopes_of(project)}
    first, second, *_ = repository.reads
    assert not indexes & set(first) and indexes <= set(second)
    assert (await stored_documents(seed))[page_key("project", project["_id"])] == ["later", "mine", "theirs"]
    assert await stored_documents(seed) == await expected_documents(seed, [project])


async def test_a_known_name_reads_nothing_its_builder_remembers(seed: Seeder) -> None:
    """The next file of a name: its pages and the indexes listing it were written by this builder, so none
    is read; each is written (the indexes unchanged), its compare-and-swap checking it."""
    repository = ReadingRepository(seed.mongo)
    builder = PageBuilder(seed.mongo, repository, remember_entries=64)
    await seed.group("known", "public")
    project = await seed.project("known/app", "public")
    await upload(seed, builder, project, "same", "1.0")
    indexes = {key: doc["rev"] for key, doc in (await simple_documents(seed.mongo)).items() if "names" in doc}
    repository.reads.clear()

    await upload(seed, builder, project, "same", "2.0")

    assert [key for keys in repository.reads for key in keys] == []
    after = await simple_documents(seed.mongo)
    assert all(after[key]["rev"] != rev for key, rev in indexes.items())  # rewritten, so checked
    assert await stored_documents(seed) == await expected_documents(seed, [project])


async def test_a_remembered_index_listing_the_name_that_a_deletion_changed_is_read_again(seed: Seeder) -> None:
    """A deletion removed the name from the index since the builder wrote it: the rewrite of the remembered
    index fails its compare-and-swap, the next pass reads it, and the name is listed again."""
    repository = ReadingRepository(seed.mongo)
    builder = PageBuilder(seed.mongo, repository, remember_entries=64)
    deleter = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
    await seed.group("again", "public")
    project = await seed.project("again/app", "public")
    await upload(seed, builder, project, "back", "1.0")
    gone = await seed.packages.find_file(project["_id"], "back-1.0.tar.gz")
    assert gone is not None
    await seed.mongo.distributions.update_one({"_id": gone.id}, {"$set": {"state": "deleting"}})
    await deleter.rebuild_scopes(project, ["back"])
    assert (await stored_documents(seed))[page_key("project", project["_id"])] == []
    repository.reads.clear()

    await upload(seed, builder, project, "back", "2.0")

    indexes = {page_key(s.kind, s.id) for s in scopes_of(project)}
    first, second, *_ = repository.reads
    assert not indexes & set(first) and indexes <= set(second)  # trusted first, read once that failed
    assert (await stored_documents(seed))[page_key("project", project["_id"])] == ["back"]
    assert await stored_documents(seed) == await expected_documents(seed, [project])


async def test_a_first_pass_from_documents_remembered_before_the_file_was_installable_reads_nothing_after(
        seed: Seeder) -> None:
    """Every document the pass swaps was remembered before the file became installable (`installed_at`): a
    deletion of the file would fail one of the swaps, so the file is not read again after the writes."""
    builder = CheckingBuilder(seed.mongo, ReadingRepository(seed.mongo), remember_entries=64)
    await seed.group("quick", "public")
    project = await seed.project("quick/app", "public")
    await upload(seed, builder, project, "fast", "1.0")
    assert builder.rereads == 1  # the first file of the project: its documents were read, not remembered
    await upload(seed, builder, project, "fast", "2.0")
    await upload(seed, builder, project, "other", "1.0")  # a new name: the indexes remembered, its pages guessed
    assert builder.rereads == 1
    assert await stored_documents(seed) == await expected_documents(seed, [project])


async def test_a_deletion_after_the_file_became_installable_fails_a_swap_of_a_pass_that_does_not_read_again(
        seed: Seeder) -> None:
    """The file is deleted (and its scopes rebuilt) between becoming installable and being indexed, by a
    builder that remembered every document from before: its swaps fail, the next pass finds the file gone,
    and the documents end as the files say (the file not listed)."""
    projects: list[dict[str, Any]] = []
    for name, guessed in (("known", False), ("newname", True)):
        builder = CheckingBuilder(seed.mongo, PackageRepository(seed.mongo), remember_entries=64)
        deleter = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
        await seed.group(f"race-{name}", "public")
        project = await seed.project(f"race-{name}/app", "public")
        projects.append(project)
        await upload(seed, builder, project, "first", "1.0")
        if not guessed:
            await upload(seed, builder, project, name, "1.0")
        installed_at = time.monotonic()
        await seed.add_file(project, f"{name}-2.0.tar.gz", b"doomed" + name.encode(), name=name, version="2.0")
        doomed = await seed.packages.find_file(project["_id"], f"{name}-2.0.tar.gz")
        assert doomed is not None
        await seed.mongo.distributions.update_one({"_id": doomed.id}, {"$set": {"state": "deleting"}})
        await deleter.rebuild_scopes(project, [name])
        rereads = builder.rereads

        await builder.index_file(project["_id"], doomed.id, name, doomed, installed_at=installed_at)

        assert builder.rereads > rereads  # a swap failed: the next pass read the file
        assert await stored_documents(seed) == await expected_documents(seed, projects)
