"""The proxy's MongoDB adapter against the real server (nx-27017 in tests): pins every operation it relies
on (string `_id` upserts, chunked bulk upserts, float timestamps, equality on a bool)."""
from __future__ import annotations

from proxy.adapters.store import MongoProxyStore
from proxy.pages import Learned, ProxiedPage
from proxy.upstream import UpstreamFile
from registry_shared.adapters.mongo import Mongo


def upstream_file(i: int, **fields) -> UpstreamFile:
    return UpstreamFile(filename=f"big-{i}.0.tar.gz", url=f"https://files.example/big-{i}.0.tar.gz",
                        sha256=f"{i:064x}", version=f"{i}.0", **fields)


async def test_pages_round_trip(mongo: Mongo) -> None:
    store = MongoProxyStore(mongo)
    await store.ensure_indexes()
    assert await store.load_page("big") is None
    page = ProxiedPage("big", True, 1700000000.25, (upstream_file(1, yanked="bad", size=None),), ("1.0",), '"e1"')
    await store.save_page(page)
    assert await store.load_page("big") == page
    await store.touch_page("big", 1700000600.5, '"e2"')
    touched = await store.load_page("big")
    assert touched is not None and (touched.fetched_at, touched.etag, touched.files) == (1700000600.5, '"e2"',
                                                                                        page.files)
    await store.save_page(ProxiedPage.missing("big", 1700000700.0))
    assert await store.load_page("big") == ProxiedPage.missing("big", 1700000700.0)


async def test_files_are_registered_in_bulk_and_keep_what_was_stored(mongo: Mongo) -> None:
    store = MongoProxyStore(mongo)
    await store.ensure_indexes()
    files = [upstream_file(i) for i in range(1, 1201)]  # more than one bulk round trip
    await store.register_files("big", files)
    found = await store.find_file(files[700].sha256, files[700].filename)
    assert found is not None and found.name == "big" and found.file == files[700] and found.stored_size is None
    await store.mark_stored(found, 1234)
    await store.mark_metadata(found, "ab" * 32, extracted=True)
    assert await store.learned("big") == {files[700].filename: Learned(1234, "ab" * 32)}
    await store.register_files("big", [upstream_file(701, requires_python=">=3.9")])  # upstream changed it
    again = await store.find_file(files[700].sha256, files[700].filename)
    assert again is not None and again.stored_size == 1234 and again.metadata_stored
    assert again.file.requires_python == ">=3.9" and again.local_metadata_sha256 == "ab" * 32
    assert await store.find_file(files[700].sha256, "other-name.tar.gz") is None
