"""How the simple documents are stored (records.pages.packed): the lists packed, and documents written
before packing (plain lists) read as they are and packed by their next write."""
from __future__ import annotations

from registry_shared.adapters.packages import PackageRepository, new_revision, page_key
from registry_shared.pages import PageBuilder, build_page
from registry_shared.records.files import StoredFile
from tests.integration.index_api.index_support import Seeder
from tests.support.pages import simple_documents


async def test_documents_with_plain_lists_are_read_and_their_next_write_packs_them(seed: Seeder) -> None:
    await seed.group("legacy", "public")
    project = await seed.project("legacy/app", "public")
    await seed.add_file(project, "demo-1.0.tar.gz", b"demo1", name="demo", version="1.0")
    files = [StoredFile.from_doc(d) async for d in seed.mongo.distributions.find({})]
    entries, versions = build_page(files)
    page, index = page_key("project", project["_id"], "demo"), page_key("project", project["_id"])
    # As written before packing.
    await seed.mongo.simple_pages.insert_many([
        {"_id": page, "scope_kind": "project", "scope_id": project["_id"], "name": "demo", "versions": versions,
         "files": [e.to_doc() for e in entries], "rev": "old"},
        {"_id": index, "scope_kind": "project", "scope_id": project["_id"], "names": ["demo"], "rev": "old"}])

    assert (await seed.packages.get_package_page("project", project["_id"], "demo")).files == tuple(entries)
    assert (await seed.packages.get_index("project", project["_id"])).names == ("demo",)

    builder = PageBuilder(seed.mongo, PackageRepository(seed.mongo))
    for filename, name, version in (("demo-2.0.tar.gz", "demo", "2.0"), ("other-1.0.tar.gz", "other", "1.0")):
        await seed.add_file(project, filename, filename.encode(), name=name, version=version)
        stored = await seed.packages.find_file(project["_id"], filename)
        assert stored is not None
        await builder.index_file(project["_id"], stored.id, name, stored)

    raw = {doc["_id"]: doc async for doc in seed.mongo.simple_pages.find({"_id": {"$in": [page, index]}})}
    assert "files" not in raw[page] and isinstance(raw[page]["files_z"], bytes)
    assert "names" not in raw[index] and isinstance(raw[index]["names_z"], bytes)
    documents = await simple_documents(seed.mongo)
    assert [f["filename"] for f in documents[page]["files"]] == ["demo-1.0.tar.gz", "demo-2.0.tar.gz"]
    assert documents[index]["names"] == ["demo", "other"]
    page_doc = await seed.packages.get_package_page("project", project["_id"], "demo")
    assert page_doc.versions == ("1.0", "2.0") and len(page_doc.files) == 2
    assert (await seed.packages.get_index("project", project["_id"])).names == ("demo", "other")


async def test_swaps_in_one_round_trip_say_which_were_written_or_that_an_update_may_not_have_been(
        seed: Seeder) -> None:
    packages = seed.packages
    index = {"scope_kind": "project", "scope_id": 1, "names": ["a"]}
    page = {"scope_kind": "project", "scope_id": 1, "name": "a", "versions": [], "files": []}
    stamps = [new_revision(), new_revision()]
    assert await packages.swap_pages([("project:1", None, index), ("project:1:a", None, page)], stamps) == [True, True]
    stored = await packages.get_pages(["project:1", "project:1:a"])
    assert [stored["project:1"]["rev"], stored["project:1:a"]["rev"]] == [stamp["rev"] for stamp in stamps]

    # Both current: both written.
    assert await packages.swap_pages([("project:1", stored["project:1"], {**index, "names": ["a", "b"]}),
                                      ("project:1:a", stored["project:1:a"], {**page, "versions": ["1.0"]})],
                                     [new_revision(), new_revision()]) == [True, True]
    # One stale: neither update is known to be written (the current one was); an insert's outcome is known.
    current = await packages.get_pages(["project:1:a"])
    outcome = await packages.swap_pages([("project:1", stored["project:1"], index),
                                         ("project:1:a", current["project:1:a"], {**page, "versions": ["2.0"]}),
                                         ("project:1:b", None, {**page, "name": "b"}),
                                         ("project:1:a", None, page)],
                                        [new_revision() for _ in range(4)])
    assert outcome == [False, False, True, False]
    after = await simple_documents(seed.mongo)
    assert after["project:1"]["names"] == ["a", "b"] and after["project:1:a"]["versions"] == ["2.0"]
    assert after["project:1:b"]["name"] == "b"


async def test_a_plain_list_written_after_the_packed_one_wins(seed: Seeder) -> None:
    """During a rolling upgrade a replica of the earlier version may `$set` a plain list on a document this
    version packed (it knows nothing of `files_z`): the plain list is the newer one, and is what is read."""
    await seed.group("rolling", "public")
    project = await seed.project("rolling/app", "public")
    for filename, version in (("demo-1.0.tar.gz", "1.0"), ("demo-2.0.tar.gz", "2.0")):
        await seed.add_file(project, filename, filename.encode(), name="demo", version=version)
    files = sorted([StoredFile.from_doc(d) async for d in seed.mongo.distributions.find({})], key=lambda f: f.version)
    first, _ = build_page(files[:1])
    both, versions = build_page(files)
    page = page_key("project", project["_id"], "demo")
    fields = {"scope_kind": "project", "scope_id": project["_id"], "name": "demo"}
    packed_first = {**fields, "versions": ["1.0"], "files": [e.to_doc() for e in first]}
    assert await seed.packages.swap_page(page, None, packed_first)
    # What an earlier version's writer does: $set the plain list, leaving the packed field behind.
    await seed.mongo.simple_pages.update_one({"_id": page}, {"$set": {"versions": versions,
                                                                      "files": [e.to_doc() for e in both]}})
    assert (await seed.packages.get_package_page("project", project["_id"], "demo")).files == tuple(both)
    assert [f["filename"] for f in (await seed.packages.get_pages([page]))[page]["files"]] == [
        "demo-1.0.tar.gz", "demo-2.0.tar.gz"]
