"""Filters on a field with a declared index are served by it, on MongoDB and on the local FerretDB,
and never lose a document.

FerretDB v1.24.2 handed SQLite nothing but `_id`: a filter on any other field (a queue, a status,
an open case's key) read and decoded every document of the collection. deploy/local/infra.sh now
builds it with `lindungi_pushdown.go`, which hands SQLite the plain string terms (equality and
`$in`) of top-level fields as FerretDB writes its index expressions. That must never drop a
document MongoDB would return, so the first test compares answers for the strings most likely
to be written differently (escapes, quotes, non-ASCII, control characters) and for fields that
hold arrays, documents, numbers or nothing; it holds on any MongoDB-protocol server. The second
reads the server's own plan (see test_database_id_index.py for how each server answers). Date
bounds (a timer due, a lease expired) are handed to SQLite as numbers, which FerretDB's own index
on the field cannot answer; the build keeps a second SQLite index for them beside every index
whose first key is a plain field, and the date-bound tests check both the answers and the plan.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.errors import DuplicateKeyError

from shared.mongo import Doc, connect
from shared.settings import Settings
from tests.integration.test_database_id_index import _explain, _stages

pytestmark = pytest.mark.integration

TRICKY = [
    "plain",
    "a<b>&c",
    'q"uote',
    "back\\slash",
    "é ü 日本",
    "emoji 😀",
    "line\nbreak",
    "tab\t",
    "\u2028",
    "",
]


async def test_string_filters_return_exactly_what_mongodb_returns(settings: Settings) -> None:
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["things"]
        await coll.create_index([("f", 1), ("g", 1)])
        docs: list[Doc] = []
        for i, text in enumerate(TRICKY):
            docs += [
                {"_id": f"str-{i}", "f": text, "g": "x"},
                {"_id": f"arr-{i}", "f": ["other", text], "g": "x"},  # matched by an element
                {"_id": f"doc-{i}", "f": {"t": text}, "g": "x"},  # never matched by a string
            ]
        docs += [{"_id": "num", "f": 5, "g": "x"}, {"_id": "none", "g": "x"}, {"_id": "null", "f": None}]
        await coll.insert_many(docs)
        for i, text in enumerate(TRICKY):
            want = [f"arr-{i}", f"str-{i}"]
            for f in ({"f": text}, {"f": {"$in": [text, "absent"]}, "g": "x"}, {"g": "x", "f": text}):
                assert sorted(d["_id"] for d in await coll.find(f).to_list()) == want, (text, f)
                assert await coll.count_documents(f) == 2, (text, f)
        assert sorted(d["_id"] for d in await coll.find({"f": "other"}).to_list()) == [
            f"arr-{i}" for i in range(len(TRICKY))
        ]
        assert await coll.count_documents({"f": "5"}) == 0
        assert await coll.count_documents({"f": {"$in": ["plain", 5]}}) == 3  # a number in $in: not pushed
        # Writes go through the same lookup.
        assert (await coll.update_many({"f": "plain"}, {"$set": {"u": 1}})).modified_count == 2
        assert (await coll.delete_many({"f": {"$in": ["plain"]}, "u": 1})).deleted_count == 2
        assert await coll.count_documents({"u": 1}) == 0
    finally:
        await client.close()


async def test_a_string_filter_on_an_indexed_field_uses_the_index(settings: Settings) -> None:
    client = connect(settings)
    try:
        db = client[settings.database("store")]
        await db["cases"].create_index([("queue", 1), ("status", 1)])
        await db["cases"].insert_many(
            [
                {"_id": f"case-{i:04d}", "queue": f"q{i % 15}", "status": "new" if i % 3 else "closed"}
                for i in range(300)
            ]
        )
        for f in ({"queue": "q7"}, {"queue": "q7", "status": {"$in": ["new", "open"]}}):
            explained = await db.command("explain", {"find": "cases", "filter": f}, verbosity="queryPlanner")
            planner = explained["queryPlanner"]
            if "Plan" in planner:  # FerretDB (SQLite): SEARCH ... USING INDEX, never SCAN of the table
                details = [str(row) for row in planner["Plan"]]
                assert any("SEARCH" in d and "USING INDEX" in d for d in details), details
                assert not any("detail=SCAN cases" in d for d in details), (
                    details
                )  # json_each may scan an array
            else:  # MongoDB
                names = {s["stage"] for s in _stages(planner["winningPlan"])}
                assert "IXSCAN" in names and "COLLSCAN" not in names, names
    finally:
        await client.close()


async def test_date_bounds_and_booleans_return_exactly_what_mongodb_returns(settings: Settings) -> None:
    """Date bounds (a timer due, a lease expired) and booleans are handed to SQLite too."""
    t0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["timers"]
        await coll.create_index([("due_at", 1)])
        await coll.create_index([("pending", 1)])
        docs: list[Doc] = [
            {"_id": f"t{i:02d}", "due_at": t0 + timedelta(minutes=i), "pending": i % 2 == 0}
            for i in range(20)
        ]
        docs += [
            {
                "_id": "arr",
                "due_at": [t0 + timedelta(minutes=30), t0 - timedelta(days=1)],
                "pending": [False, True],
            },
            {"_id": "num", "due_at": 5, "pending": 1},  # a number and an int: neither a date nor a bool
            {"_id": "str", "due_at": "2026-11-20T06:00:00Z", "pending": "true"},
            {"_id": "none"},
        ]
        await coll.insert_many(docs)

        async def ids(f: Doc) -> list[str]:
            return sorted(d["_id"] for d in await coll.find(f).to_list())

        now = t0 + timedelta(minutes=5)
        assert await ids({"due_at": {"$lte": now}}) == ["arr", "t00", "t01", "t02", "t03", "t04", "t05"]
        assert await ids({"due_at": {"$lt": now}}) == ["arr", "t00", "t01", "t02", "t03", "t04"]
        window = {"$gte": t0 + timedelta(minutes=18), "$lt": t0 + timedelta(minutes=31)}
        assert await ids({"due_at": window}) == ["arr", "t18", "t19"]
        assert await ids({"due_at": {"$gt": t0 + timedelta(minutes=18)}}) == ["arr", "t19"]
        assert await ids({"pending": True, "due_at": {"$lte": now}}) == ["arr", "t00", "t02", "t04"]
        assert await ids({"pending": False, "due_at": {"$lte": now}}) == ["arr", "t01", "t03", "t05"]
        assert await coll.count_documents({"pending": {"$in": [True]}}) == 11
        assert (await coll.delete_many({"due_at": {"$lt": t0 + timedelta(minutes=2)}})).deleted_count == 3
    finally:
        await client.close()


def _served_by_an_index(explained: Doc, table: str) -> bool:
    planner = explained["queryPlanner"]
    if "Plan" in planner:  # FerretDB (SQLite): SEARCH ... USING INDEX, never SCAN of the table
        details = [str(row) for row in planner["Plan"]]
        return any("SEARCH" in d and "USING INDEX" in d for d in details) and not any(
            f"detail=SCAN {table}" in d for d in details
        )
    names = {s["stage"] for s in _stages(planner["winningPlan"])}  # MongoDB
    return "IXSCAN" in names and "COLLSCAN" not in names


async def test_a_date_bound_on_an_indexed_field_uses_an_index(settings: Settings) -> None:
    """The timer loop's `{due_at: {$lte: now}}` and a lease sweep's `{lease_until: {$lt: now}}` are
    index reads: at 100,000 pending timers a scan took 6.6 s a pass (docs/performance.md)."""
    t0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["timers"]
        await coll.create_index([("due_at", 1)])
        await coll.create_index([("lease_until", 1), ("status", 1)])  # the field first in a compound index
        await coll.insert_many(
            [
                {
                    "_id": f"t{i:03d}",
                    "due_at": t0 + timedelta(minutes=i),
                    "lease_until": t0 + timedelta(minutes=300 - i),
                    "status": "assigned",
                    "pending": i % 2 == 0,
                }
                for i in range(300)
            ]
        )
        now = t0 + timedelta(minutes=5)
        bounds: list[Doc] = [
            {"due_at": {"$lte": now}},
            {"due_at": {"$gte": now, "$lt": now + timedelta(minutes=3)}},
            {"due_at": {"$lte": now}, "pending": True},  # another key, without index: still the range
            {"lease_until": {"$lt": now}},
        ]
        for f in bounds:
            explained = await _explain(coll, f)
            assert _served_by_an_index(explained, "timers"), (f, explained["queryPlanner"])
        assert await coll.count_documents({"due_at": {"$lte": now}}) == 6
        assert await coll.count_documents({"due_at": {"$lte": now}, "pending": True}) == 3
        assert await coll.count_documents({"lease_until": {"$lt": t0 + timedelta(minutes=1)}}) == 0
        assert await coll.count_documents({"lease_until": {"$lte": t0 + timedelta(minutes=1)}}) == 1

        # Dropping the index (and with it what serves the bound) and making it again works, and the
        # answers stay the same without any index.
        await coll.drop_index("due_at_1")
        assert await coll.count_documents({"due_at": {"$lte": now}}) == 6
        await coll.create_index([("due_at", 1)])
        explained = await _explain(coll, {"due_at": {"$lte": now}})
        assert _served_by_an_index(explained, "timers"), explained["queryPlanner"]
        assert await coll.count_documents({"due_at": {"$lte": now}}) == 6
    finally:
        await client.close()


async def test_an_update_that_breaks_a_unique_index_is_a_duplicate_key_error(settings: Settings) -> None:
    """As on MongoDB: E11000 (DuplicateKeyError) for an update and a findAndModify, as for an insert.

    FerretDB reported it as an internal error quoting SQLite's constraint, which services had to
    recognise by its text; infra.sh's build maps it to the insert's duplicate-key code.
    """
    client = connect(settings)
    try:
        coll = client[settings.database("unique")]["docs"]
        await coll.create_index("open_key", unique=True, sparse=True)
        await coll.insert_many([{"_id": "a", "open_key": "w1"}, {"_id": "b", "open_key": "w2"}])
        with pytest.raises(DuplicateKeyError) as update:
            await coll.update_one({"_id": "b"}, {"$set": {"open_key": "w1"}})
        with pytest.raises(DuplicateKeyError) as find_and_modify:
            await coll.find_one_and_update({"_id": "b"}, {"$set": {"open_key": "w1"}})
        assert update.value.code == find_and_modify.value.code == 11000
        assert await coll.find_one({"_id": "b"}) == {"_id": "b", "open_key": "w2"}  # nothing half-written
    finally:
        await client.close()


async def test_a_marker_read_by_exists_returns_what_mongodb_returns_from_its_index(
    settings: Settings,
) -> None:
    """`{f: {$exists: true}}` (casework's sweep for claims whose event is still to write, every 5 s)
    is served by the index declared on the field: at a national year a read of every case took
    33 s a pass on the local FerretDB. A field holding null exists; an absent one does not."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["cases"]
        await coll.create_index([("_claim_pending", 1)], sparse=True)
        docs: list[Doc] = [{"_id": f"c{i:03d}", "status": "new"} for i in range(200)]
        docs += [
            {"_id": "obj", "_claim_pending": {"actor": "ani", "at": datetime(2026, 11, 20, tzinfo=UTC)}},
            {"_id": "null", "_claim_pending": None},
            {"_id": "empty", "_claim_pending": ""},
            {"_id": "zero", "_claim_pending": 0},
            {"_id": "arr", "_claim_pending": []},
            {"_id": "nested", "other": {"_claim_pending": 1}},  # not a top-level field: not present
        ]
        await coll.insert_many(docs)
        found = sorted(d["_id"] for d in await coll.find({"_claim_pending": {"$exists": True}}).to_list())
        assert found == ["arr", "empty", "null", "obj", "zero"]
        assert await coll.count_documents({"_claim_pending": {"$exists": False}}) == 201
        explained = await _explain(coll, {"_claim_pending": {"$exists": True}})
        assert _served_by_an_index(explained, "cases"), explained["queryPlanner"]
    finally:
        await client.close()
