"""Page building: the order of files and versions in a precomputed simple document."""
from __future__ import annotations

import dataclasses
import json
import zlib
from datetime import UTC, datetime, timedelta, timezone

from registry_shared.events import Scope
from registry_shared.pages import PageBuilder, add_entry, build_page, file_entry, scopes_of, upload_time
from registry_shared.records.files import StoredFile
from registry_shared.records.pages import PackagePageDoc, ScopeIndexDoc, packed, unpacked

T0 = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def doc(file_id: int, filename: str, version: str, canonical: str, project_id: int = 7, **extra) -> StoredFile:
    """A stored `distributions` document, as the repository reads it."""
    return StoredFile.from_doc({"_id": file_id, "filename": filename, "version": version,
                                "canonical_version": canonical, "project_id": project_id,
                                "sha256": f"{file_id:064x}", "size": 100 + file_id, "created_at": T0,
                                "state": "installable", **extra})


def test_files_sorted_by_pep440_version_then_filename_then_project() -> None:
    docs = [
        doc(1, "demo-1.10.tar.gz", "1.10", "1.10"),
        doc(2, "demo-1.9-py3-none-any.whl", "1.9", "1.9"),
        doc(3, "demo-1.9.tar.gz", "1.9", "1.9"),
        doc(4, "demo-2.0rc1.tar.gz", "2.0rc1", "2rc1"),
        doc(5, "demo-1.9.tar.gz", "1.9", "1.9", project_id=3),
        doc(6, "demo-1.0.0.tar.gz", "1.0.0", "1"),
        doc(7, "demo-1.0-py3-none-any.whl", "1.0", "1"),
    ]
    entries, _versions = build_page(docs)
    assert [(e.filename, e.project_id) for e in entries] == [
        ("demo-1.0-py3-none-any.whl", 7),
        ("demo-1.0.0.tar.gz", 7),
        ("demo-1.9-py3-none-any.whl", 7),
        ("demo-1.9.tar.gz", 3),
        ("demo-1.9.tar.gz", 7),
        ("demo-1.10.tar.gz", 7),
        ("demo-2.0rc1.tar.gz", 7),
    ]


def test_versions_are_distinct_releases_in_pep440_order_spelled_by_their_first_file() -> None:
    docs = [
        doc(10, "demo-1.0-py3-none-any.whl", "1.0", "1"),
        doc(11, "demo-1.0.0.tar.gz", "1.0.0", "1"),
        doc(12, "demo-1.10.tar.gz", "1.10", "1.10"),
        doc(13, "demo-1.2.tar.gz", "1.2", "1.2"),
        doc(14, "demo-1.2.dev1.tar.gz", "1.2.dev1", "1.2.dev1"),
    ]
    _entries, versions = build_page(reversed(docs))
    assert versions == ["1.0", "1.2.dev1", "1.2", "1.10"]


def test_entry_carries_what_the_page_needs() -> None:
    [entry], _ = build_page([doc(1, "demo-1.0.tar.gz", "1.0", "1", requires_python=">=3.9",
                                 metadata_sha256="ab" * 32)])
    assert entry.to_doc() == {
        "filename": "demo-1.0.tar.gz", "sha256": f"{1:064x}", "size": 101,
        "upload_time": "2024-05-01T12:00:00.123000Z", "version": "1.0", "requires_python": ">=3.9",
        "core_metadata_sha256": "ab" * 32, "yanked": False, "project_id": 7,
    }


def test_empty_page() -> None:
    assert build_page([]) == ([], [])


def test_upload_time_is_utc_with_z() -> None:
    cest = timezone(timedelta(hours=2))
    assert upload_time(datetime(2024, 5, 1, 14, 0, tzinfo=cest)) == "2024-05-01T12:00:00.000000Z"
    assert upload_time(datetime(2024, 5, 1, 12, 0)) == "2024-05-01T12:00:00.000000Z"


def test_scopes_are_the_project_then_its_ancestors_root_first() -> None:
    assert scopes_of({"_id": 9, "ancestor_ids": [1, 4]}) == [
        Scope(kind="project", id=9), Scope(kind="group", id=1), Scope(kind="group", id=4)]
    assert scopes_of({"_id": 9, "ancestor_ids": []}) == [Scope(kind="project", id=9)]


def test_adding_files_one_by_one_gives_the_page_build_page_gives() -> None:
    docs = [
        doc(1, "demo-1.10.tar.gz", "1.10", "1.10"),
        doc(2, "demo-1.9-py3-none-any.whl", "1.9", "1.9"),
        doc(3, "demo-1.9.tar.gz", "1.9", "1.9", project_id=3),
        doc(4, "demo-2.0rc1.tar.gz", "2.0rc1", "2rc1"),
        doc(5, "demo-1.9.tar.gz", "1.9", "1.9"),
        doc(6, "demo-1.0.tar.gz", "1.0", "1", requires_python=">=3.9"),
    ]
    page = None
    for d in reversed(docs):  # any order: the page keeps build_page's order
        files, versions = add_entry(page, file_entry(d))
        page = {"files": files, "versions": versions}
    entries, versions = build_page(docs)
    assert page == {"files": [e.to_doc() for e in entries], "versions": versions}


def test_adding_a_file_again_replaces_its_entry() -> None:
    first = doc(1, "demo-1.0.tar.gz", "1.0", "1")
    files, versions = add_entry(None, file_entry(first))
    again = add_entry({"files": files, "versions": versions}, file_entry(dataclasses.replace(first, size=5)))
    assert again == ([{**files[0], "size": 5}], ["1.0"])


def test_another_spelling_of_a_listed_release_needs_a_full_rebuild() -> None:
    files, versions = add_entry(None, file_entry(doc(1, "demo-1.0.tar.gz", "1.0", "1")))
    page = {"files": files, "versions": versions}
    assert add_entry(page, file_entry(doc(2, "demo-1.0.0-py3-none-any.whl", "1.0.0", "1"))) is None
    assert add_entry(page, file_entry(doc(3, "demo-1.0-py3-none-any.whl", "1.0", "1"))) is not None


def test_stored_lists_are_packed_and_unpacked_to_what_was_written() -> None:
    files, versions = add_entry(None, file_entry(doc(1, "demo-1.0.tar.gz", "1.0", "1", yanked="bad build")))
    page = {"_id": "project:7:demo", "name": "demo", "versions": versions, "files": files, "rev": "r"}
    stored = {"_id": page["_id"], **packed({k: v for k, v in page.items() if k != "_id"})}
    assert set(stored) == {"_id", "name", "versions", "files_z", "rev"} and isinstance(stored["files_z"], bytes)
    assert unpacked(stored) == page
    assert PackagePageDoc.from_doc(stored) == PackagePageDoc.from_doc(page)
    index = {"_id": "group:3", "names": ["demo", "ünïcode"]}
    assert unpacked({"_id": "group:3", **packed({"names": index["names"]})}) == index
    assert ScopeIndexDoc.from_doc({"_id": "group:3", **packed({"names": index["names"]})}).names == ("demo", "ünïcode")


def test_packed_lists_are_the_bytes_the_standard_library_wrote() -> None:
    """Packed with orjson, the same compact JSON the earlier version wrote with `json` (so documents of both
    versions, and replicas of both, read each other's)."""
    files, _ = add_entry(None, file_entry(doc(1, "démo-1.0.tar.gz", "1.0", "1", requires_python=">=3.8",
                                              yanked="bad build")))
    for field, value in (("files", files), ("names", ["demo", "ünïcode", "日本"])):
        stored = packed({field: value})[f"{field}_z"]
        assert zlib.decompress(stored) == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        legacy = {"_id": "x", f"{field}_z": zlib.compress(json.dumps(value).encode())}  # escaped non-ASCII too
        assert unpacked(legacy)[field] == value


def test_a_document_written_before_packing_is_read_as_it_is() -> None:
    legacy = {"_id": "project:7:demo", "versions": ["1.0"], "files": [{"filename": "demo-1.0.tar.gz"}]}
    assert unpacked(legacy) == legacy


def test_remembered_documents_are_bounded_by_the_entries_they_hold() -> None:
    """The page builder's memory of what it wrote: a document counts 1 plus its files or names, the oldest
    forgotten first, and one larger than the whole budget is not kept at all."""
    builder = PageBuilder(None, None, remember_entries=10)  # type: ignore[arg-type]  # no database touched
    page = {"files": [{"filename": f"f{i}"} for i in range(3)]}  # weighs 4
    builder._remember("project:1:a", page)
    builder._remember("project:1", {"names": ["a", "b"]})  # 3
    builder._remember("project:1:b", page)  # 4: 11 in all, so the oldest goes
    assert list(builder._pages) == ["project:1", "project:1:b"]
    builder._remember("project:1:huge", {"files": [{}] * 10})  # 11 alone: never kept, nothing else dropped
    assert list(builder._pages) == ["project:1", "project:1:b"]
    builder._remember("project:1:b", None)  # forgotten after a failed swap
    assert list(builder._pages) == ["project:1"] and builder._entries == 3
