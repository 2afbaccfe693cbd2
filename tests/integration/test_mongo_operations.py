"""Every MongoDB operation the registry relies on, against the embedded nx-27017 server.

The code keeps to the common subset of MongoDB (DESIGN.md, "The embedded default"); this file pins that
subset so an nx-27017 upgrade, or a new operation in the code, shows here first. Add a test when the
code starts using an operation. The `test_known_gap_*` tests pin what nx-27017 0.8.1 does differently
from MongoDB: when one fails after an upgrade, the gap is closed; drop the test and any workaround.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry_shared.adapters.governance import GovernanceRepository
from registry_shared.adapters.mongo import ID_BLOCKS, INDEXES, Mongo
from tests.support.servers import BackingServices, unique_suffix


@pytest.fixture
async def db(backing_services: BackingServices) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(backing_services.mongodb_url, tz_aware=True,
                                                serverSelectionTimeoutMS=5000)
    name = f"ops_{unique_suffix()}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


# -- CRUD ----------------------------------------------------------------------------------------------
async def test_insert_one_then_find_one(db) -> None:
    result = await db.users.insert_one({"_id": 1, "username": "alice", "admin": False})
    assert result.inserted_id == 1
    assert await db.users.find_one({"_id": 1}) == {"_id": 1, "username": "alice", "admin": False}
    assert (await db.users.find_one({"username": "alice"}))["_id"] == 1
    assert await db.users.find_one({"username": "bob"}) is None


async def test_unique_compound_index_refuses_a_second_document(db) -> None:
    await db.distributions.create_index([("project_id", ASCENDING), ("filename", ASCENDING)], unique=True)
    await db.distributions.insert_one({"_id": 1, "project_id": 1, "filename": "a-1.0.tar.gz"})
    with pytest.raises(DuplicateKeyError) as raised:
        await db.distributions.insert_one({"_id": 2, "project_id": 1, "filename": "a-1.0.tar.gz"})
    assert raised.value.code == 11000
    # Either half of the key alone is not a conflict.
    await db.distributions.insert_one({"_id": 3, "project_id": 2, "filename": "a-1.0.tar.gz"})
    await db.distributions.insert_one({"_id": 4, "project_id": 1, "filename": "a-2.0.tar.gz"})
    assert await db.distributions.count_documents({}) == 3


async def test_duplicate_id_is_a_duplicate_key_error(db) -> None:
    await db.users.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"_id": 1})


async def test_create_index_is_idempotent(db) -> None:
    first = await db.users.create_index([("username", ASCENDING)], unique=True)
    again = await db.users.create_index([("username", ASCENDING)], unique=True)
    assert first == again == "username_1"


async def test_the_adapters_indexes_apply_twice(backing_services) -> None:
    mongo = Mongo.connect(backing_services.mongodb_url, f"ops_{unique_suffix()}")
    try:
        assert await mongo.ping()
        await mongo.ensure_indexes()
        await mongo.ensure_indexes()
        for collection, indexes in INDEXES.items():
            present = {tuple(info["key"]): info.get("unique", False)
                       for info in (await mongo.db[collection].index_information()).values()}
            for keys, options in indexes:
                assert present.get(tuple(keys)) == options.get("unique", False), (collection, keys)
    finally:
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()


async def test_find_with_in_and_projections(db) -> None:
    await db.members.insert_many([
        {"_id": "project:3:1", "user_id": 1, "access_level": 30},
        {"_id": "group:2:1", "user_id": 1, "access_level": 40},
        {"_id": "group:9:1", "user_id": 1, "access_level": 50},
    ])
    found = [doc async for doc in db.members.find({"_id": {"$in": ["project:3:1", "group:2:1", "nope"]}},
                                                  {"access_level": 1})]
    assert sorted(found, key=lambda d: d["_id"]) == [
        {"_id": "group:2:1", "access_level": 40}, {"_id": "project:3:1", "access_level": 30}]
    excluded = await db.members.find_one({"_id": "group:9:1"}, {"access_level": 0})
    assert excluded == {"_id": "group:9:1", "user_id": 1}
    only_id = await db.members.find_one({"_id": "group:9:1"}, {"_id": 1})
    assert only_id == {"_id": "group:9:1"}


async def test_filters_on_array_members_ne_and_null(db) -> None:
    await db.projects.insert_many([
        {"_id": 1, "ancestor_ids": [10, 11], "revoked_at": None, "state": "installable"},
        {"_id": 2, "ancestor_ids": [10], "revoked_at": datetime(2026, 1, 1, tzinfo=UTC), "state": "processing"},
        {"_id": 3, "ancestor_ids": [], "revoked_at": None, "state": "uploading"},
    ])
    assert [d["_id"] async for d in db.projects.find({"ancestor_ids": 10}).sort("_id", ASCENDING)] == [1, 2]
    assert [d["_id"] async for d in db.projects.find({"ancestor_ids": 11})] == [1]
    assert [d["_id"] async for d in db.projects.find({"revoked_at": None}).sort("_id", ASCENDING)] == [1, 3]
    assert [d["_id"] async for d in db.projects.find({"state": {"$ne": "installable"}}).sort("_id", ASCENDING)] == [
        2, 3]
    assert [d["_id"] async for d in db.projects.find({"state": {"$in": ["processing", "installable"]}})
            .sort("_id", ASCENDING)] == [1, 2]


async def test_update_one_set_with_upsert(db) -> None:
    created = await db.instance_settings.update_one({"_id": "instance"}, {"$set": {"forwarding": False}}, upsert=True)
    assert created.upserted_id == "instance" and created.matched_count == 0
    updated = await db.instance_settings.update_one({"_id": "instance"}, {"$set": {"allow_guest": True}}, upsert=True)
    assert updated.upserted_id is None and updated.matched_count == 1 and updated.modified_count == 1
    assert await db.instance_settings.find_one({"_id": "instance"}) == {
        "_id": "instance", "forwarding": False, "allow_guest": True}


async def test_update_one_with_a_condition_reports_what_it_matched(db) -> None:
    await db.distributions.insert_one({"_id": 7, "upload_id": "u1", "state": "uploading"})
    missed = await db.distributions.update_one({"_id": 7, "upload_id": "other"}, {"$set": {"state": "processing"}})
    assert (missed.matched_count, missed.modified_count) == (0, 0)
    hit = await db.distributions.update_one({"_id": 7, "upload_id": "u1", "state": "uploading"},
                                            {"$set": {"state": "processing", "size": 10}})
    assert (hit.matched_count, hit.modified_count) == (1, 1)
    same = await db.distributions.update_one({"_id": 7, "state": {"$in": ["processing", "installable"]}},
                                             {"$set": {"state": "processing"}})
    assert (same.matched_count, same.modified_count) == (1, 0)
    assert await db.distributions.find_one({"_id": 7}) == {
        "_id": 7, "upload_id": "u1", "state": "processing", "size": 10}


async def test_delete_one_reports_what_it_deleted(db) -> None:
    await db.distributions.insert_many([{"_id": 1, "state": "uploading"}, {"_id": 2, "state": "installable"}])
    assert (await db.distributions.delete_one({"_id": 2, "state": {"$ne": "installable"}})).deleted_count == 0
    assert (await db.distributions.delete_one({"_id": 1, "state": {"$ne": "installable"}})).deleted_count == 1
    assert (await db.distributions.delete_one({"_id": 1})).deleted_count == 0
    assert await db.distributions.count_documents({}) == 1


async def test_delete_many_by_a_time_before(db) -> None:
    """The web interface removes expired sessions (`web_sessions`, inserted with datetimes) this way."""
    now = datetime.now(UTC)
    await db.web_sessions.insert_many([{"_id": "a", "expires_at": now - timedelta(hours=1)},
                                       {"_id": "b", "expires_at": now + timedelta(hours=1)},
                                       {"_id": "c", "expires_at": now - timedelta(seconds=1)}])
    assert (await db.web_sessions.delete_many({"expires_at": {"$lt": now}})).deleted_count == 2
    assert [doc["_id"] async for doc in db.web_sessions.find({})] == ["b"]


# -- sequences -----------------------------------------------------------------------------------------
async def test_find_one_and_update_inc_upsert_returns_the_new_value(db) -> None:
    for expected in (1, 2, 3):
        doc = await db.counters.find_one_and_update({"_id": "ids"}, {"$inc": {"seq": 1}}, upsert=True,
                                                    return_document=ReturnDocument.AFTER)
        assert doc == {"_id": "ids", "seq": expected}
    assert await db.counters.find_one_and_update({"_id": "absent"}, {"$inc": {"seq": 1}}) is None


async def test_next_id_is_unique_under_concurrency_from_two_clients(backing_services) -> None:
    name = f"ops_{unique_suffix()}"
    first = Mongo.connect(backing_services.mongodb_url, name)
    second = Mongo.connect(backing_services.mongodb_url, name)
    try:
        ids = await asyncio.gather(*(m.next_id("ids") for _ in range(30) for m in (first, second)))
        assert sorted(ids) == list(range(1, 61))
        # Sequences taken in blocks (ID_BLOCKS): unique across the clients, one block each, not gapless.
        block = ID_BLOCKS["files"]
        files = await asyncio.gather(*(m.next_id("files") for _ in range(block + 5) for m in (first, second)))
        assert len(set(files)) == len(files) and max(files) <= 4 * block
        assert (await first.db.counters.find_one({"_id": "files"}))["seq"] == 4 * block  # two blocks each
    finally:
        await first.client.drop_database(name)
        await first.close()
        await second.close()


async def test_audit_records_of_two_workers_are_listed_newest_first(backing_services) -> None:
    """Two workers take audit ids in blocks, so a later record may have a smaller id: the listing goes by
    `created_at` (then `id`), and each record keeps the id it was given."""
    name = f"ops_{unique_suffix()}"
    first, second = Mongo.connect(backing_services.mongodb_url, name), Mongo.connect(backing_services.mongodb_url, name)
    try:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        written = []
        for n, mongo in enumerate([first, second, first, second]):  # the second's block comes after the first's
            record = {"event_name": "package_published", "created_at": start + timedelta(seconds=n)}
            written.append(await GovernanceRepository(mongo).insert_record(f"m{n}", record, ["project:1"]))
        assert [r["id"] for r in written] == [1, 1 + ID_BLOCKS["audit_events"], 2, 2 + ID_BLOCKS["audit_events"]]
        listed, total = await GovernanceRepository(first).records("project:1", created_after=None,
                                                                   created_before=None, event_name=None,
                                                                   skip=0, limit=10)
        assert total == 4
        assert [r["id"] for r in listed] == [r["id"] for r in reversed(written)]
    finally:
        await first.client.drop_database(name)
        await first.close()
        await second.close()


# -- reading many --------------------------------------------------------------------------------------
async def test_count_documents(db) -> None:
    await db.distributions.insert_many([{"_id": i, "project_id": i % 2} for i in range(5)])
    assert await db.distributions.count_documents({}) == 5
    assert await db.distributions.count_documents({"project_id": 1}) == 2
    assert await db.distributions.count_documents({"project_id": 9}) == 0


async def test_sort_skip_limit(db) -> None:
    await db.packages.insert_many([{"_id": i, "group": i % 3} for i in range(10)])
    page = db.packages.find({}).sort([("group", ASCENDING), ("_id", DESCENDING)]).skip(2).limit(3)
    assert [doc["_id"] async for doc in page] == [3, 0, 7]
    first = db.packages.find({"group": 2}, {"_id": 1}).sort("_id", ASCENDING).limit(1)
    assert [doc async for doc in first] == [{"_id": 2}]


async def test_simple_aggregation(db) -> None:
    await db.packages.insert_many([{"_id": i, "project_id": i % 3} for i in range(11)])
    cursor = await db.packages.aggregate([
        {"$match": {"_id": {"$ne": 0}}},
        {"$group": {"_id": "$project_id", "count": {"$sum": 1}}},
        {"$sort": {"_id": 1}},
    ])
    assert [doc async for doc in cursor] == [{"_id": 0, "count": 3}, {"_id": 1, "count": 4}, {"_id": 2, "count": 3}]


# -- values --------------------------------------------------------------------------------------------
async def test_bytes_round_trip(db) -> None:
    data = bytes(range(256)) * 1024 + b"\x00Metadata-Version: 2.1\r\n"
    await db.core_metadata.update_one({"_id": 5}, {"$set": {"data": data}}, upsert=True)
    doc = await db.core_metadata.find_one({"_id": 5})
    assert isinstance(doc["data"], bytes) and doc["data"] == data


async def test_tz_aware_datetimes_round_trip_at_millisecond_precision(db) -> None:
    now = datetime.now(UTC)
    await db.personal_tokens.insert_one({"_id": 1, "created_at": now, "expires_at": None})
    doc = await db.personal_tokens.find_one({"_id": 1})
    assert doc["created_at"].utcoffset() == timedelta(0)
    assert doc["created_at"] == now.replace(microsecond=now.microsecond // 1000 * 1000)
    assert doc["expires_at"] is None


async def test_nested_documents_and_lists_round_trip(db) -> None:
    page = {"_id": "project:3:demo", "versions": ["1.0", "2.0"],
            "files": [{"filename": "demo-1.0.tar.gz", "hashes": {"sha256": "ab" * 32}, "yanked": False}]}
    await db.simple_pages.update_one({"_id": page["_id"]}, {"$set": {k: v for k, v in page.items() if k != "_id"}},
                                     upsert=True)
    assert await db.simple_pages.find_one({"_id": page["_id"]}) == page


async def test_set_and_unset_in_one_update_replace_a_list_by_a_binary_field(db) -> None:
    """How a simple document's plain list, written before packing, gives way to its packed field on the
    next compare-and-swap (`adapters.packages._page_update`); `$unset` of an absent field changes nothing."""
    await db.simple_pages.insert_one({"_id": "p", "rev": "a", "files": [{"filename": "x.tar.gz"}], "names": ["x"]})
    result = await db.simple_pages.update_one({"_id": "p", "rev": "a"},
                                              {"$set": {"files_z": b"\x00packed", "rev": "b"},
                                               "$unset": {"files": "", "absent": ""}})
    assert result.matched_count == 1
    assert await db.simple_pages.find_one({"_id": "p"}) == {"_id": "p", "rev": "b", "names": ["x"],
                                                            "files_z": b"\x00packed"}


async def test_unordered_bulk_write_reports_refused_inserts_by_index_and_counts_matched_updates(db) -> None:
    """`PackageRepository.swap_pages`: compare-and-swaps of several simple documents in one round trip."""
    await db.simple_pages.insert_many([{"_id": "a", "rev": "1"}, {"_id": "b", "rev": "1"}])
    result = await db.simple_pages.bulk_write([UpdateOne({"_id": "a", "rev": "1"}, {"$set": {"rev": "2"}}),
                                               UpdateOne({"_id": "b", "rev": "1"}, {"$set": {"rev": "2"}}),
                                               InsertOne({"_id": "c", "rev": "1"})], ordered=False)
    assert (result.matched_count, result.inserted_count) == (2, 1)
    with pytest.raises(BulkWriteError) as refused:
        await db.simple_pages.bulk_write([InsertOne({"_id": "a", "rev": "x"}),
                                          UpdateOne({"_id": "b", "rev": "stale"}, {"$set": {"rev": "x"}}),
                                          UpdateOne({"_id": "c", "rev": "1"}, {"$set": {"rev": "3"}}),
                                          InsertOne({"_id": "d", "rev": "1"})], ordered=False)
    details = refused.value.details
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(0, 11000)]
    assert (details["nMatched"], details["nInserted"]) == (1, 1)  # the others were still applied
    assert [doc["rev"] async for doc in db.simple_pages.find({}).sort("_id", 1)] == ["2", "2", "3", "1"]


# -- known gaps of nx-27017 0.8.1 (DESIGN.md) ----------------------------------------------------------
async def test_known_gap_find_one_and_update_upsert_ignores_set_on_insert(db) -> None:
    doc = await db.counters.find_one_and_update({"_id": "s"}, {"$inc": {"seq": 1}, "$setOnInsert": {"kind": "x"}},
                                                upsert=True, return_document=ReturnDocument.AFTER)
    assert doc == {"_id": "s", "seq": 1}  # MongoDB: also "kind": "x"
    await db.counters.update_one({"_id": "u"}, {"$set": {"seq": 1}, "$setOnInsert": {"kind": "x"}}, upsert=True)
    assert await db.counters.find_one({"_id": "u"}) == {"_id": "u", "seq": 1, "kind": "x"}  # update_one honours it


async def test_known_gap_add_to_set_on_a_missing_field_does_nothing(db) -> None:
    await db.groups.insert_one({"_id": 1})
    await db.groups.update_one({"_id": 1}, {"$addToSet": {"tags": "a"}})
    assert await db.groups.find_one({"_id": 1}) == {"_id": 1}  # MongoDB: {"tags": ["a"]}
    await db.groups.update_one({"_id": 1}, {"$set": {"tags": []}})
    await db.groups.update_one({"_id": 1}, {"$addToSet": {"tags": "a"}})
    assert await db.groups.find_one({"_id": 1}) == {"_id": 1, "tags": ["a"]}


async def test_known_gap_partial_unique_index_acts_as_a_full_one(db) -> None:
    await db.tokens.create_index([("name", ASCENDING)], unique=True, partialFilterExpression={"live": True})
    await db.tokens.insert_one({"name": "t", "live": False})
    with pytest.raises(DuplicateKeyError):  # MongoDB: accepted, the index covers live documents only
        await db.tokens.insert_one({"name": "t", "live": False})


async def test_known_gap_a_collection_named_like_a_gridfs_bucket_loses_updates(db) -> None:
    # nx-27017 treats `<name>_files` as GridFS storage: $set reports a change but nothing changes.
    # Why the registry's collection is `distributions`, not `package_files`.
    await db.package_files.insert_one({"_id": 1, "state": "uploading"})
    result = await db.package_files.update_one({"_id": 1}, {"$set": {"state": "processing"}})
    assert result.modified_count == 1
    assert await db.package_files.find_one({"_id": 1}) == {"_id": 1, "state": "uploading"}  # MongoDB: processing


async def test_known_gap_index_names_differ_from_the_names_create_index_returns(db) -> None:
    returned = await db.users.create_index([("username", ASCENDING)], unique=True)
    assert returned == "username_1"
    assert "username_1" not in await db.users.index_information()  # MongoDB: it is there


async def test_known_gap_update_by_integer_id_and_in_hits_the_wrong_row(db) -> None:
    # nx-27017 applies an update whose filter combines an integer `_id` with `$in` to the row whose SQLite
    # rowid equals that id, while reporting success. The registry's write filters use `$ne` instead.
    await db.docs.insert_one({"_id": 10, "state": "processing"})  # rowid 1, _id 10
    result = await db.docs.update_one({"_id": 10, "state": {"$in": ["processing"]}}, {"$set": {"state": "done"}})
    assert result.modified_count == 1
    assert await db.docs.find_one({"_id": 10}) == {"_id": 10, "state": "processing"}  # MongoDB: done


async def test_update_by_integer_id_and_ne_works(db) -> None:
    await db.docs.insert_one({"_id": 10, "state": "processing"})
    await db.docs.update_one({"_id": 10, "state": {"$ne": "uploading"}}, {"$set": {"state": "done"}})
    assert await db.docs.find_one({"_id": 10}) == {"_id": 10, "state": "done"}


async def test_known_gap_datetimes_written_by_set_read_back_as_strings(db) -> None:
    from datetime import UTC, datetime
    await db.docs.insert_one({"_id": 1})
    await db.docs.update_one({"_id": 1}, {"$set": {"at": datetime(2026, 1, 2, tzinfo=UTC)}})
    assert isinstance((await db.docs.find_one({"_id": 1}))["at"], str)  # MongoDB: a datetime


async def test_known_gap_replace_one_upsert_inserts_nothing(db) -> None:
    """nx-27017 gap (contracts.md): `replace_one(..., upsert=True)` on a missing `_id` reports success and
    stores nothing (MongoDB inserts). Hence policies and statuses are written with `update_one` + `$set`."""
    await db.policies.replace_one({"_id": "instance"}, {"cooldown_hours": 1}, upsert=True)
    stored = await db.policies.find_one({"_id": "instance"})
    assert stored is None  # MongoDB: {"_id": "instance", "cooldown_hours": 1}
    await db.policies.update_one({"_id": "group:1"}, {"$set": {"cooldown_hours": 2, "blocked": []}}, upsert=True)
    await db.policies.update_one({"_id": "group:1"}, {"$set": {"cooldown_hours": 3, "blocked": [{"n": 1}]}},
                                 upsert=True)
    assert await db.policies.find_one({"_id": "group:1"}) == {"_id": "group:1", "cooldown_hours": 3,
                                                               "blocked": [{"n": 1}]}
