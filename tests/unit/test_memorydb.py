"""bench.memorydb: the stand-in the national seed runs the services' write paths against."""

from __future__ import annotations

import pytest
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from bench.memorydb import MemoryDb, matches


def test_filters_on_paths_lists_and_operators() -> None:
    doc = {"_id": "a", "status": "new", "tags": ["x", "y"], "n": 3, "deep": {"k": 1}}
    assert matches(doc, {"status": {"$in": ["new", "triaged"]}, "tags": "x", "deep.k": 1})
    assert matches(doc, {"$or": [{"status": "closed"}, {"n": {"$gte": 3, "$lt": 4}}]})
    assert not matches(doc, {"n": {"$lt": 3}})
    assert matches(doc, {"missing": None, "other": {"$exists": False}})
    assert not matches(doc, {"status": {"$ne": "new"}})


async def test_upserts_updates_and_duplicates() -> None:
    db = MemoryDb("t")
    coll = db["c"]
    await coll.update_one({"_id": "w"}, {"$set": {"a": 1}, "$setOnInsert": {"created": 1}}, upsert=True)
    await coll.update_one({"_id": "w"}, {"$set": {"a": 2}, "$setOnInsert": {"created": 9}}, upsert=True)
    await coll.update_one({"_id": "w"}, {"$addToSet": {"s": {"$each": [1, 1, 2]}}, "$inc": {"n": 2}})
    await coll.update_one({"_id": "w"}, {"$push": {"p": {"$each": [1, 1]}}, "$max": {"m": 5}})
    assert await coll.find_one({"_id": "w"}) == {
        "_id": "w",
        "a": 2,
        "created": 1,
        "s": [1, 2],
        "n": 2,
        "p": [1, 1],
        "m": 5,
    }
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": "w"})
    after = await coll.find_one_and_update(
        {"_id": "w", "a": 2}, {"$set": {"a": 3}}, return_document=ReturnDocument.AFTER
    )
    assert after is not None and after["a"] == 3
    assert await coll.find_one_and_update({"_id": "w", "a": 2}, {"$set": {"a": 4}}) is None
    # a replacement upserted by `_id` takes the filter's `_id`, then replaces in place
    await coll.replace_one({"_id": "r"}, {"v": 1}, upsert=True)
    await coll.replace_one({"_id": "r"}, {"v": 2}, upsert=True)
    assert await coll.find_one({"_id": "r"}) == {"_id": "r", "v": 2}
    assert [d["_id"] for d in db.take("c")] == ["w", "r"] and db.take("c") == []


async def test_reads_by_key_agree_with_a_full_scan_after_every_kind_of_write() -> None:
    coll = MemoryDb("t")["c"]
    for i in range(30):
        await coll.insert_one({"_id": f"d{i:02d}", "k": f"v{i % 3}", "tags": [f"t{i % 4}"], "n": i % 2})
    assert [d["_id"] for d in await coll.find({"k": "v1"}).to_list()][:3] == ["d01", "d04", "d07"]
    # writes after the indexes exist: a value moved, an array grown, a replacement, an upsert, a delete
    await coll.update_one({"_id": "d01"}, {"$set": {"k": "v2"}})
    await coll.update_many({"n": 1, "k": "v0"}, {"$push": {"tags": "late"}})
    await coll.replace_one({"_id": "d02"}, {"k": "v1", "tags": []})
    await coll.update_one({"_id": "new"}, {"$set": {"k": "v1", "tags": ["late"]}}, upsert=True)
    await coll.find_one_and_update({"_id": "d05"}, {"$set": {"k": "v0"}})
    await coll.delete_one({"_id": "d04"})
    await coll.delete_one({"_id": "d07"})
    await coll.insert_one({"_id": "d07", "k": "v1", "tags": [], "n": 0})  # written again: last
    for query in (
        {"k": "v1"},
        {"k": "v2"},
        {"k": "v0", "n": 1},
        {"tags": "late"},
        {"tags": "t1", "k": "v2"},
        {"_id": {"$in": ["d09", "d01", "gone"]}},
        {"n": 0},
    ):
        everything = [d for d in coll.docs.values() if matches(d, query)]
        assert await coll.find(query).to_list() == everything, query
    in_order = ["d02", "d10", "d13", "d16", "d19", "d22", "d25", "d28", "new", "d07"]  # as first written
    assert [d["_id"] for d in await coll.find({"k": "v1"}).to_list()] == in_order
