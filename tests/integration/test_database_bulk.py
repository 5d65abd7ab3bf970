"""Bulk writes go out in commands of at most BULK_OPS operations (shared/mongo.bulk_write_parts).

FerretDB (build lindungi.6) stopped answering an update command of about 100 updates of existing
documents, and stayed so until restarted (its update handler held every statement's read open
until the command ended; build lindungi.8 runs them one at a time). The first test sends 200 such
updates through `bulk_write_parts`, and would hang (and wedge the store) if the parts grew past
what FerretDB answers. The second: a clash in a bulk write of guarded upserts is named at its
own position, and the others are written.
"""

from __future__ import annotations

import asyncio

import pytest
from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError

from shared.mongo import BULK_OPS, bulk_write_parts, connect
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_two_hundred_updates_of_existing_documents_in_parts(settings: Settings) -> None:
    assert BULK_OPS <= 64  # what the local FerretDB answers (see above)
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["bulk"]
        await coll.insert_many([{"_id": f"d{i:03d}", "v": 0} for i in range(300)])
        ops = [UpdateOne({"_id": f"d{i:03d}"}, {"$set": {"v": 1}}) for i in range(200)]
        ops.append(UpdateOne({"_id": "new"}, {"$set": {"v": 1}}, upsert=True))
        clashed = await asyncio.wait_for(bulk_write_parts(coll, ops), timeout=60)
        assert clashed == set()
        assert await coll.count_documents({"v": 1}) == 201
        assert await coll.count_documents({"v": 0}) == 100
    finally:
        await client.close()


async def test_guarded_upserts_in_one_bulk_write_say_which_lost_and_the_others_are_written(
    settings: Settings,
) -> None:
    """The read models' guarded writes ("newer version wins") many at once: an upsert whose guard
    keeps a newer stored version meets the unique `_id`, and only that one. FerretDB 1.24 stopped the
    command at the first such clash and answered it at index 0 without counts (build lindungi.8
    answers as MongoDB does: deploy/local/infra.sh, change 7), and an ordered one ran on past it
    (lindungi.9 stops there)."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["guarded"]
        await coll.insert_many([{"_id": "newer", "version": 5}, {"_id": "older", "version": 1}])

        def newer_wins(doc_id: str) -> ReplaceOne:
            return ReplaceOne({"_id": doc_id, "version": {"$lt": 3}}, {"version": 3}, upsert=True)

        ops = [newer_wins("new"), newer_wins("newer"), newer_wins("older"), DeleteOne({"_id": "none"})]
        ops += [newer_wins(f"n{i:02d}") for i in range(40)]  # past one part (BULK_OPS)
        clashed = await asyncio.wait_for(bulk_write_parts(coll, ops), timeout=60)
        assert clashed == {1}
        stored = {d["_id"]: d["version"] async for d in coll.find({})}
        assert stored == {"newer": 5, "older": 3, "new": 3, **{f"n{i:02d}": 3 for i in range(40)}}

        # ordered (the driver's default): the command stops at its first write error
        ordered = [newer_wins("first"), newer_wins("newer"), newer_wins("never")]
        with pytest.raises(BulkWriteError) as failed:
            await coll.bulk_write(ordered)
        assert [e["index"] for e in failed.value.details["writeErrors"]] == [1]
        assert await coll.find_one({"_id": "first"}) is not None
        assert await coll.find_one({"_id": "never"}) is None
    finally:
        await client.close()
