"""Lookups by `_id` are served by the database's `_id` index, on MongoDB and on the local FerretDB.

Lindungi finds, updates and deletes by `_id` (alone, or with a status as a guard) on collections
that grow all year; a lookup that reads the whole collection makes every such operation cost in
proportion to the collection, and mark batches by `{_id: {$in: [...]}}`. FerretDB v1.24.2's
SQLite backend read the whole collection for both until deploy/local/infra.sh patched it (see
patch_ferretdb there). The check reads the server's own
query plan with the `explain` command, so it is deterministic and means the same on both:
- FerretDB (SQLite backend) answers with SQLite's EXPLAIN QUERY PLAN rows: `SEARCH ... USING
  INDEX` is the index, `SCAN` reads the whole table. Its updates and deletes by `_id` filter on
  the same expression its finds do (IDColumn), so a find's plan speaks for them too.
- MongoDB answers with its winning plan: IDHACK, EXPRESS_IXSCAN or IXSCAN on `_id_`, never COLLSCAN.
"""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from shared.mongo import Doc, connect
from shared.settings import Settings

pytestmark = pytest.mark.integration

DOCS = 300


def _stages(plan: Any) -> list[dict[str, Any]]:
    """Every stage of a MongoDB plan tree (inputStage, inputStages, queryPlan, ...)."""
    out = []
    if isinstance(plan, dict):
        if "stage" in plan:
            out.append(plan)
        for v in plan.values():
            out += _stages(v)
    elif isinstance(plan, list):
        for v in plan:
            out += _stages(v)
    return out


def _uses_id_index(explained: Doc, *, flagged: bool = True) -> bool:
    """flagged: FerretDB must also say filterPushdown (its own scalar `_id` pushdown does; the
    `_id: {$in}` terms infra.sh's build adds are pushed down without that flag)."""
    planner = explained["queryPlanner"]
    if "Plan" in planner:  # FerretDB, SQLite backend: rows of SQLite's EXPLAIN QUERY PLAN
        details = [str(row) for row in planner["Plan"]]
        return (
            (explained.get("filterPushdown") is True or not flagged)
            and any("SEARCH" in d and "USING INDEX" in d and "__id_" in d for d in details)
            and not any("detail=SCAN cases" in d for d in details)  # json_each may scan an array
        )
    if "winningPlan" in planner:  # MongoDB
        stages = _stages(planner["winningPlan"])
        names = {s["stage"] for s in stages}
        on_id = any(
            s["stage"] == "IDHACK" or (s["stage"].endswith("IXSCAN") and s.get("indexName") == "_id_")
            for s in stages
        )
        return on_id and "COLLSCAN" not in names
    raise AssertionError(f"an explain answer this test does not know how to read: {explained}")


async def _explain(coll: Any, f: Doc) -> Doc:
    return await coll.database.command("explain", {"find": coll.name, "filter": f}, verbosity="queryPlanner")


async def test_id_lookups_are_served_by_the_id_index(settings: Settings) -> None:
    client = connect(settings)
    try:
        db = client[settings.database("store")]
        oid = ObjectId()
        await db["cases"].insert_many(
            [{"_id": f"case-{i:05d}", "status": "open" if i % 2 else "closed"} for i in range(DOCS)]
            + [{"_id": oid, "status": "open"}]
        )
        filters: list[Doc] = [
            {"_id": "case-00123"},
            {"_id": oid},
            {"_id": "case-00123", "status": "open"},  # a guarded claim or transition
            {"status": "open", "_id": oid},
        ]
        for f in filters:
            explained = await db.command("explain", {"find": "cases", "filter": f}, verbosity="queryPlanner")
            assert _uses_id_index(explained), (f, explained["queryPlanner"])
    finally:
        await client.close()


async def test_id_with_other_keys_still_applies_every_key(settings: Settings) -> None:
    """The `_id` index narrows the lookup; the other keys of the filter must still hold."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["cases"]
        await coll.insert_many([{"_id": f"case-{i}", "status": "open", "n": i} for i in range(5)])
        assert await coll.find_one({"_id": "case-3", "status": "closed"}) is None
        assert await coll.find_one({"_id": "case-3", "status": "open", "n": {"$gt": 3}}) is None
        assert (await coll.find_one({"_id": "case-3", "status": "open", "n": {"$lte": 3}}) or {})["n"] == 3
        closed, open_ = {"_id": "case-3", "status": "closed"}, {"_id": "case-3", "status": "open"}
        assert (await coll.update_one(closed, {"$inc": {"n": 1}})).matched_count == 0
        assert (await coll.delete_one(closed)).deleted_count == 0
        assert (await coll.update_one(open_, {"$inc": {"n": 10}})).modified_count == 1
        assert await coll.count_documents({"_id": "case-3", "n": 13}) == 1
        assert (await coll.delete_one({"_id": "case-3", "n": 13})).deleted_count == 1
        assert await coll.count_documents({}) == 4
    finally:
        await client.close()


async def test_id_in_is_served_by_the_id_index_and_returns_exactly_the_ids(settings: Settings) -> None:
    """`{_id: {$in: [...]}}` (a batch of decisions marked emitted, a page of chains) is an index
    lookup, never a read of the collection, and finds exactly the ids listed, whatever they hold."""
    client = connect(settings)
    try:
        coll = client[settings.database("store")]["cases"]
        oid = ObjectId()
        tricky = ['q"uote', "back\\slash", "é 日本", "line\nbreak", ""]
        await coll.insert_many(
            [{"_id": f"case-{i:05d}", "status": "open" if i % 2 else "closed"} for i in range(DOCS)]
            + [{"_id": oid, "status": "open"}]
            + [{"_id": t, "status": "open"} for t in tricky]
        )
        some = [f"case-{i:05d}" for i in (3, 7, 8, 250)]
        filters: list[Doc] = [{"_id": {"$in": some}}, {"_id": {"$in": [oid, "case-00007"]}, "status": "open"}]
        for f in filters:
            explained = await _explain(coll, f)
            assert _uses_id_index(explained, flagged=False), (f, explained["queryPlanner"])

        async def ids(f: Doc) -> list[Any]:
            return sorted(str(d["_id"]) for d in await coll.find(f).to_list())

        assert await ids({"_id": {"$in": [*some, "absent"]}}) == some
        assert await ids({"_id": {"$in": [oid, "case-00007", "case-00008"]}, "status": "open"}) == sorted(
            [str(oid), "case-00007"]
        )
        assert await ids({"_id": {"$in": tricky}}) == sorted(tricky)
        assert await ids({"_id": {"$in": [str(oid)]}}) == []  # the ObjectId's hex is another value
        assert await ids({"_id": {"$in": ["case-00003", 3]}}) == ["case-00003"]  # a number: not pushed down
        assert await ids({"_id": {"$in": []}}) == []
        many = [f"case-{i:05d}" for i in range(0, DOCS, 2)] + [f"absent-{i}" for i in range(1200)]
        assert await coll.count_documents({"_id": {"$in": many}}) == DOCS // 2  # more than a pushdown takes
        marked = await coll.update_many({"_id": {"$in": [*some, oid]}}, {"$set": {"emitted": True}})
        assert (marked.matched_count, marked.modified_count) == (5, 5)
        assert await ids({"emitted": True}) == sorted([*some, str(oid)])
        assert (await coll.delete_many({"_id": {"$in": tricky[:2]}})).deleted_count == 2
        assert await coll.count_documents({}) == DOCS + 1 + len(tricky) - 2
    finally:
        await client.close()
