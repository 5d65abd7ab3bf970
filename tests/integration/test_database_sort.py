"""Sorted reads answer in MongoDB's order, and a sorted page is ordered by the store, not in Go.

The desk's queue page and claim-next read a queue's waiting cases in queue order (priority, due
date, age). FerretDB v1.24.2 hands SQLite no sort: it decoded every waiting case of the queue in
Go and sorted them before answering the first, so both grew with the queue's depth (0.12-0.35 s at
a national year's thousand waiting cases). deploy/local/infra.sh now builds it with
`lindungi_sort.go`, which hands SQLite the sort where SQLite orders exactly as MongoDB does. That
must never reorder an answer, so the first tests compare answers for values of every type a sort
key can hold (and for the ones the build leaves to FerretDB's own sort: arrays, documents); they
hold on any MongoDB-protocol server. The last also reads the server's own plan: on MongoDB the
declared index serves the sort (no SORT stage); on the local FerretDB, SQLite walks the order
index the build keeps beside it (no sort of every match).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument

from shared.mongo import Doc, connect
from shared.settings import Settings
from tests.integration.test_database_id_index import _stages

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)
OIDS = sorted(ObjectId() for _ in range(3))
# Values of every type a sort key may hold that SQLite can order; MongoDB's rank of each type.
VALUES: list[Any] = [
    None,
    -7,
    0,
    2**40,
    -1.5,
    2.25,
    3,
    "",
    "A",
    "a",
    "ab",
    "b",
    "é",
    "日本",
    "😀",
    'q"uote',
    "back\\slash",
    *OIDS,
    False,
    True,
    T0,
    T0 + timedelta(milliseconds=1),
    T0 - timedelta(days=400),
]


def _rank(v: Any) -> int:
    """MongoDB's order of BSON types for the values above (missing and null alike)."""
    if v is None:
        return 2
    if isinstance(v, bool):
        return 9
    if isinstance(v, int | float):
        return 3
    if isinstance(v, str):
        return 4
    if isinstance(v, ObjectId):
        return 8
    if isinstance(v, datetime):
        return 10
    raise AssertionError(v)


def _key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (2, 0)
    if isinstance(v, str):
        return (4, v.encode())  # MongoDB compares strings byte by byte (no collation)
    if isinstance(v, ObjectId):
        return (8, v.binary)
    return (_rank(v), v)


def _docs() -> list[Doc]:
    docs: list[Doc] = []
    for i, v in enumerate(VALUES):
        docs.append({"_id": f"v{i:02d}", "q": "x", "k": v, "j": i % 3})
        docs.append({"_id": f"w{i:02d}", "q": "y", "k": v, "j": i % 3})  # another queue
    docs.append({"_id": "missing", "q": "x", "j": 1})
    return docs


def _expected(docs: list[Doc], order: list[tuple[str, int]]) -> list[str]:
    """The `_id`s in the given order (ties broken by the last key), as MongoDB sorts them."""
    out = list(docs)
    for field, direction in reversed(order):
        out.sort(key=lambda d: _key(d.get(field)), reverse=direction == DESCENDING)
    return [d["_id"] for d in out]


async def test_a_sort_of_scalars_of_every_type_answers_in_mongodbs_order(settings: Settings) -> None:
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["waiting"]
        await coll.create_index([("q", 1), ("k", 1), ("_id", 1)])
        docs = _docs()
        await coll.insert_many(docs)
        in_x = [d for d in docs if d["q"] == "x"]
        orders: list[list[tuple[str, int]]] = [
            [("k", ASCENDING), ("_id", ASCENDING)],
            [("k", DESCENDING), ("_id", ASCENDING)],
            [("j", DESCENDING), ("k", ASCENDING), ("_id", DESCENDING)],
        ]
        for order in orders:
            want = _expected(in_x, order)
            got = [d["_id"] for d in await coll.find({"q": "x"}).sort(order).to_list()]
            assert got == want, order
            for limit in (1, 5, 17):  # a page stops at its limit, in the same order
                page = await coll.find({"q": "x"}, {"_id": 1}).sort(order).limit(limit).to_list()
                assert [d["_id"] for d in page] == want[:limit], (order, limit)
            # a filter the store can only narrow (a number range, applied after): still in order
            narrowed = [d["_id"] for d in await coll.find({"q": "x", "j": {"$gte": 1}}).sort(order).to_list()]
            assert narrowed == [i for i in want if next(d for d in in_x if d["_id"] == i)["j"] >= 1], order
        everything = [d["_id"] for d in await coll.find({}).sort([("k", 1), ("_id", 1)]).to_list()]
        assert everything == _expected(docs, [("k", 1), ("_id", 1)])
    finally:
        await client.close()


async def test_a_claim_takes_the_head_in_mongodbs_order(settings: Settings) -> None:
    """find_one_and_update with a sort (casework's claim-next) takes the first of the order."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["cases"]
        docs = [
            {"_id": "c1", "queue": "q", "status": "new", "priority": 2, "due_at": T0, "opened_at": T0},
            {"_id": "c2", "queue": "q", "status": "new", "priority": 3, "due_at": None, "opened_at": T0},
            {"_id": "c3", "queue": "q", "status": "new", "priority": 3, "opened_at": T0},  # no deadline yet
            {"_id": "c4", "queue": "q", "status": "new", "priority": 3, "due_at": T0, "opened_at": T0},
            {"_id": "c5", "queue": "q", "status": "assigned", "priority": 9, "due_at": T0, "opened_at": T0},
            {"_id": "c6", "queue": "r", "status": "new", "priority": 9, "due_at": T0, "opened_at": T0},
            {
                "_id": "c7",
                "queue": "q",
                "status": "new",
                "priority": 3,
                "due_at": T0 - timedelta(hours=1),
                "opened_at": T0 + timedelta(days=1),
            },
        ]
        await coll.insert_many(docs)
        order = [
            ("priority", DESCENDING),
            ("due_at", ASCENDING),
            ("opened_at", ASCENDING),
            ("_id", ASCENDING),
        ]
        taken = []
        for _ in range(6):
            before = await coll.find_one_and_update(
                {"queue": "q", "status": "new"},
                {"$set": {"status": "assigned"}},
                sort=order,
                return_document=ReturnDocument.BEFORE,
            )
            if before is None:
                break
            taken.append(before["_id"])
        # missing and null due dates come before any date, as MongoDB sorts them
        assert taken == ["c2", "c3", "c7", "c4", "c1"]
    finally:
        await client.close()


async def test_arrays_and_documents_in_a_sort_key_still_sort_as_mongodb_sorts_them(
    settings: Settings,
) -> None:
    """MongoDB sorts an array by its least element (ascending) or its greatest (descending), and
    documents after strings; the build leaves such a sort to FerretDB's own, which does the same."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["things"]
        await coll.insert_many(
            [
                {"_id": "n1", "k": 1},
                {"_id": "n4", "k": 4},
                {"_id": "arr", "k": [5, 0]},
                {"_id": "s", "k": "s"},
                {"_id": "doc", "k": {"a": 1}},
            ]
        )
        up = [d["_id"] for d in await coll.find({}).sort([("k", 1), ("_id", 1)]).to_list()]
        assert up == ["arr", "n1", "n4", "s", "doc"]
        down = [d["_id"] for d in await coll.find({}).sort([("k", -1), ("_id", 1)]).to_list()]
        assert down == ["doc", "s", "arr", "n4", "n1"]
    finally:
        await client.close()


def _walks_an_index(explained: Doc) -> bool:
    """The sort is served by walking an index in order: no sort of everything that matches."""
    planner = explained["queryPlanner"]
    if "Plan" in planner:  # FerretDB: its extension says the backend sorted; SQLite's plan, how
        plan = " ".join(str(row) for row in planner["Plan"])
        return (
            explained.get("sortPushdown") is True and "lindungi_order" in plan and "TEMP B-TREE" not in plan
        )
    names = {s["stage"] for s in _stages(planner["winningPlan"])}  # MongoDB
    return "SORT" not in names and "IXSCAN" in names


async def test_a_queue_page_walks_its_index_and_misses_no_entry(settings: Settings) -> None:
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["waiting"]
        order = [("priority", -1), ("due_at", 1), ("opened_at", 1), ("_id", 1)]
        await coll.create_index([("queue", 1), *order])
        await coll.insert_many(
            [
                {"_id": f"c{i:03d}", "queue": "q", "priority": i % 4, "due_at": T0, "opened_at": T0}
                for i in range(50)
            ]
        )
        cmd = {"find": "waiting", "filter": {"queue": "q"}, "sort": dict(order), "limit": 10}
        assert _walks_an_index(await coll.database.command("explain", cmd, verbosity="queryPlanner"))
        want = sorted((f"c{i:03d}" for i in range(50)), key=lambda c: (-(int(c[1:]) % 4), c))
        page = await coll.find({"queue": "q"}).sort(order).limit(20).to_list()
        assert [d["_id"] for d in page] == want[:20]

        # an array in a sort key: MongoDB sorts it by its greatest element, descending (2 here)
        await coll.insert_one({"_id": "odd", "queue": "q", "priority": [1, 2], "opened_at": T0})
        page = await coll.find({"queue": "q"}).sort(order).limit(20).to_list()
        threes = [c for c in want if int(c[1:]) % 4 == 3]
        twos = [c for c in want if int(c[1:]) % 4 == 2]
        assert [d["_id"] for d in page] == [*threes, "odd", *twos][:20]  # no deadline: first of its rank

        # a document whose queue is an array holding "q" is in the queue (MongoDB matches elements)
        await coll.insert_one(
            {"_id": "multi", "queue": ["r", "q"], "priority": 9, "due_at": T0, "opened_at": T0}
        )
        page = await coll.find({"queue": "q"}).sort(order).limit(3).to_list()
        assert [d["_id"] for d in page] == ["multi", *threes[:2]]
    finally:
        await client.close()
