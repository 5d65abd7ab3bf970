"""The database on its own: cost of `_id` operations as a collection grows, and its concurrency contract.

`python -m bench.store [N]`: against the server in MONGODB_URI (Settings() from the environment;
any MongoDB-protocol server), in a database of its own namespace, inserts case-like documents
(about 1 KB each) and times, one operation at a time:
  find_one by _id, update_one by _id ($inc), find_one {_id, status}, update_one {_id, status},
  delete_one by _id (then the document is put back), find_one and update_one by an indexed
  string field, find_one by an element of an indexed array field, and for reference find_one by
  a field that has no index,
first at 1,000 documents and then at N (default 20,000). Prints the median and p90 in ms at
both sizes and the ratio N/1,000: about 1 where the server serves the operation from its `_id`
index, about N/1,000 where it reads the whole collection. Then checks the contract the services
rest on: 50 concurrent `$inc` on one document all kept, and 20 concurrent claimers of one
document by `{_id, status}` (update_one and find_one_and_update) give exactly one winner each.
Nothing passes or fails on speed; the contract lines say `ok` or `BROKEN`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from shared.mongo import connect
from shared.settings import Settings

N = 20_000
SMALL = 1_000
OPS = 30  # timed operations of each kind at each size
BATCH = 1_000
STATUSES = ("open", "assigned", "in_progress", "closed")

Doc = dict[str, Any]


def _doc(i: int) -> Doc:
    return {
        "_id": f"case-{i:07d}",
        "status": STATUSES[i % len(STATUSES)],
        "ref": f"ref-{i:07d}",  # no index on it: the reference line of the table
        "key": f"wk-{i:07d}",  # indexed, like an open case's key or a queue
        "tags": ["bench", f"tag-{i:07d}"],  # indexed array, like a case's incident ids
        "mission_id": "kbri-kuala-lumpur",
        "country": "MY",
        "category": "unpaid_wages",
        "severity": "high",
        "priority": i % 4,
        "n": 0,
        "worker": {"key": f"wk-{i:07d}", "name": "Siti Rahayu", "born": "1994-03-12", "sector": "domestic"},
        "notes": [{"by": "officer-7", "text": "Called the employer; wages for March and April unpaid. " * 3}],
        "history": [{"status": "open", "at": "2026-11-20T09:30:00+09:00", "by": "casework"}] * 3,
    }


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]


async def _fill(coll: AsyncCollection[Doc], start: int, stop: int) -> None:
    for lo in range(start, stop, BATCH):
        await coll.insert_many([_doc(i) for i in range(lo, min(stop, lo + BATCH))], ordered=False)


Op = Callable[[int], Awaitable[float | None]]


async def _time(op: Op, size: int, ops: int = OPS) -> list[float]:
    """Milliseconds per call of op on OPS documents spread over the collection.

    An op that returns a duration (seconds) is timed by it: the part of it that is measured.
    """
    out = []
    for k in range(ops):
        i = (k * 7919 + 13) % size  # spread over the whole collection, not only its first pages
        t = time.perf_counter()
        own = await op(i)
        out.append((own if own is not None else time.perf_counter() - t) * 1000)
    return out


def _operations(coll: AsyncCollection[Doc]) -> dict[str, Op]:
    def id_(i: int) -> str:
        return f"case-{i:07d}"

    async def find_id(i: int) -> None:
        assert await coll.find_one({"_id": id_(i)}) is not None

    async def update_id(i: int) -> None:
        assert (await coll.update_one({"_id": id_(i)}, {"$inc": {"n": 1}})).matched_count == 1

    async def find_id_status(i: int) -> None:
        assert await coll.find_one({"_id": id_(i), "status": STATUSES[i % len(STATUSES)]}) is not None

    async def update_id_status(i: int) -> None:
        flt = {"_id": id_(i), "status": STATUSES[i % len(STATUSES)]}
        res = await coll.update_one(flt, {"$inc": {"n": 1}})
        assert res.matched_count == 1

    async def delete_id(i: int) -> float:
        doc = await coll.find_one({"_id": id_(i)})
        assert doc is not None
        t = time.perf_counter()
        assert (await coll.delete_one({"_id": id_(i)})).deleted_count == 1
        elapsed = time.perf_counter() - t
        await coll.insert_one(doc)  # put back: the collection keeps its size
        return elapsed

    async def find_other(i: int) -> None:
        assert await coll.find_one({"ref": f"ref-{i:07d}"}) is not None

    async def find_key(i: int) -> None:
        assert await coll.find_one({"key": f"wk-{i:07d}"}) is not None

    async def find_element(i: int) -> None:
        assert await coll.find_one({"tags": f"tag-{i:07d}"}) is not None

    async def update_key(i: int) -> None:
        assert (await coll.update_one({"key": f"wk-{i:07d}"}, {"$inc": {"n": 1}})).matched_count == 1

    return {
        "find_one by _id": find_id,
        "update_one by _id ($inc)": update_id,
        "find_one {_id, status}": find_id_status,
        "update_one {_id, status}": update_id_status,
        "delete_one by _id": delete_id,
        "find_one by indexed field": find_key,
        "update_one by indexed field": update_key,
        "find_one by array element": find_element,
        "find_one by unindexed field": find_other,
    }


async def _measure(coll: AsyncCollection[Doc], size: int) -> dict[str, list[float]]:
    # The unindexed reference reads the whole collection each time: a few calls tell enough.
    ops = _operations(coll)
    return {name: await _time(op, size, 5 if "unindexed" in name else OPS) for name, op in ops.items()}


async def _contract(client: AsyncMongoClient[Doc], db: str) -> list[str]:
    coll = client[db]["contract"]
    lines = []
    await coll.insert_one({"_id": "counter", "n": 0})
    await asyncio.gather(*(coll.update_one({"_id": "counter"}, {"$inc": {"n": 1}}) for _ in range(50)))
    doc = await coll.find_one({"_id": "counter"})
    kept = doc["n"] if doc else 0
    lines.append(f"50 concurrent $inc on one document: {kept} kept  {'ok' if kept == 50 else 'BROKEN'}")

    await coll.insert_one({"_id": "job-a", "status": "open"})
    claim = {"_id": "job-a", "status": "open"}
    results = await asyncio.gather(
        *(coll.update_one(claim, {"$set": {"status": "taken", "by": i}}) for i in range(20))
    )
    won = sum(r.modified_count for r in results)
    verdict = "ok" if won == 1 else "BROKEN"
    lines.append(f"20 claimers of one document, update_one {{_id, status}}: {won} won  {verdict}")

    await coll.insert_one({"_id": "job-b", "status": "open"})
    docs = await asyncio.gather(
        *(
            coll.find_one_and_update(
                {"_id": "job-b", "status": "open"},
                {"$set": {"status": "taken", "by": i}},
                return_document=ReturnDocument.AFTER,
            )
            for i in range(20)
        )
    )
    won = sum(d is not None for d in docs)
    lines.append(
        f"20 claimers of one document, find_one_and_update {{_id, status}}: {won} won  "
        f"{'ok' if won == 1 else 'BROKEN'}"
    )
    return lines


async def run(n: int) -> None:
    settings = Settings(namespace=f"bench_store_{uuid.uuid4().hex[:8]}_")
    client = connect(settings)
    db = settings.database("store")
    try:
        coll = client[db]["cases"]
        await coll.create_index([("key", 1)])
        await coll.create_index([("tags", 1)])
        t = time.perf_counter()
        await _fill(coll, 0, SMALL)
        filling = time.perf_counter() - t
        small = await _measure(coll, SMALL)
        t = time.perf_counter()
        await _fill(coll, SMALL, n)
        filling += time.perf_counter() - t
        print(f"inserted {n:,} documents in {filling:.1f} s (server: {settings.mongodb_uri})")
        large = await _measure(coll, n)
        print(f"\n{'operation':<30} {'p50 @1,000':>11} {f'p50 @{n:,}':>12} {f'p90 @{n:,}':>12} {'ratio':>7}")
        for name, xs in large.items():
            a, b = statistics.median(small[name]), statistics.median(xs)
            print(f"{name:<30} {a:>8.2f} ms {b:>9.2f} ms {_pct(xs, 90):>9.2f} ms {b / a:>6.1f}x")
        print(f"(ratio: p50 at {n:,} documents / p50 at {SMALL:,}; about 1 = served by an index)\n")
        for line in await _contract(client, db):
            print(line)
    finally:
        await client.drop_database(db)
        await client.close()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else N))
