"""casework's MongoDB: one document a case, its timeline and outgoing events inside it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.casework.domain import WAITING as WAITING_STATUSES
from shared.mongo import HIDDEN, Doc
from shared.paging import Order
from shared.projection import drop_unless_newer, keep_newer

CASES = "cases"
# Every write of a case through this module adds one to its version (the waiting cases' guard).
VERSION = "_version"
# Bookkeeping no answer shows: outbox, applied event ids, a claim's pending event, the version.
PROJECTION: Doc = {**HIDDEN, "_claim_pending": 0, VERSION: 0}

# Queue order: priority (high first), then nearest deadline, then age.
QUEUE_ORDER = [("priority", DESCENDING), ("due_at", ASCENDING), ("opened_at", ASCENDING)]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[CASES].create_index([("incident_ids", 1)])
    await db[CASES].create_index([("worker_keys", 1)])  # cases about a worker (GET /v1/cases, export)
    # At most one open case per worker and category family; closed cases hold a unique dummy key.
    await db[CASES].create_index([("open_key", 1)], unique=True)
    await db[CASES].create_index([("queue", 1), ("status", 1), *QUEUE_ORDER])
    await db[CASES].create_index([("status", 1), ("queue", 1), ("opened_at", 1)])  # rebuild_waiting
    await db[CASES].create_index([("status", 1), ("lease_until", 1)])
    await db[CASES].create_index([("assignee", 1), ("status", 1)])
    await db[CASES].create_index([("awaiting_missions", 1), ("opened_at", 1)])  # missions' inboxes
    await db[CASES].create_index([("status", 1), ("closed_at", 1)])  # retention
    await db[WAITING].create_index([("queue", 1), *WAITING_ORDER.sort])  # a queue's page


def _versioned(update_doc: Doc) -> Doc:
    """The update with the case's version raised by one."""
    out = {op: dict(fields) for op, fields in update_doc.items()}
    out.setdefault("$inc", {})[VERSION] = 1
    return out


def strip(doc: Doc) -> Doc:
    """A case without its bookkeeping fields."""
    return {k: v for k, v in doc.items() if k not in PROJECTION}


async def insert_new(db: AsyncDatabase[Doc], doc: Doc) -> str:
    """Insert a case: 'inserted', 'exists' (same id: applied before) or 'open_key' (an open case holds it)."""
    doc[VERSION] = 1
    try:
        await db[CASES].insert_one(doc)
    except DuplicateKeyError:
        if await db[CASES].count_documents({"_id": doc["_id"]}, limit=1):
            return "exists"
        return "open_key"
    await follow(db, doc)
    return "inserted"


async def closed_before(db: AsyncDatabase[Doc], cutoff: Any, limit: int) -> list[Doc]:
    """Cases closed before `cutoff` and not anonymised yet (retention)."""
    query = {"status": "closed", "closed_at": {"$lte": cutoff}, "anonymised_at": None}
    return await db[CASES].find(query, PROJECTION).limit(limit).to_list()


async def anonymise(db: AsyncDatabase[Doc], case: Doc, update: Doc) -> bool:
    """Write an anonymised case (and its event) if it is still closed and unchanged since read."""
    result = await db[CASES].update_one(
        {"_id": case["_id"], "status": "closed", "updated_at": case.get("updated_at")}, _versioned(update)
    )
    return result.modified_count == 1


async def get(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    return await db[CASES].find_one({"_id": case_id}, PROJECTION)


async def get_raw(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    """A case with its bookkeeping (applied event ids), for handlers and transitions."""
    return await db[CASES].find_one({"_id": case_id}, {"_outbox": 0})


async def find_open(db: AsyncDatabase[Doc], open_key: str) -> Doc | None:
    return await db[CASES].find_one({"open_key": open_key}, {"_outbox": 0})


async def find_placement(db: AsyncDatabase[Doc], *, incident_id: str, open_key: str | None) -> list[Doc]:
    """The cases that hold an incident, and the open case holding a worker's family key."""
    # Two reads, not one `$or`: each is served by its own index on MongoDB, and on the local
    # FerretDB only a top-level key is handed to SQLite (an `$or` would read every case).
    projection = {"_outbox": 0, "timeline": 0}
    found = await db[CASES].find({"incident_ids": incident_id}, projection).to_list()
    if open_key is not None and not any(d.get("open_key") == open_key for d in found):
        holder = await db[CASES].find_one({"open_key": open_key}, projection)
        if holder is not None:
            found.append(holder)
    return found


# The order of case lists (GET /v1/cases), oldest first; its cursor pages them.
LIST_ORDER = Order(("opened_at", ASCENDING), ("_id", ASCENDING))


async def find(
    db: AsyncDatabase[Doc], query: Doc, *, limit: int = 100, after: str | None = None
) -> list[Doc]:
    """Cases in list order, after a page cursor if given."""
    cursor = db[CASES].find(LIST_ORDER.after(query, after), PROJECTION).sort(LIST_ORDER.sort).limit(limit)
    return await cursor.to_list()


async def update(db: AsyncDatabase[Doc], query: Doc, update_doc: Doc) -> Doc | None:
    """Apply one update if the query still matches; the case after it, or None."""
    doc = await db[CASES].find_one_and_update(
        query, _versioned(update_doc), return_document=ReturnDocument.AFTER
    )
    if doc is None:
        return None
    if doc.get("status") in WAITING_STATUSES or "status" in update_doc.get("$set", {}):
        await follow(db, doc)
    return strip(doc)


async def claim_head(db: AsyncDatabase[Doc], query: Doc, update_doc: Doc) -> Doc | None:
    """Atomically take the head of a queue (its query) in queue order; the case as it was before."""
    before = await db[CASES].find_one_and_update(
        query, _versioned(update_doc), sort=QUEUE_ORDER, return_document=ReturnDocument.BEFORE
    )
    if before is not None:
        after = {**before, **update_doc.get("$set", {}), VERSION: int(before.get(VERSION) or 0) + 1}
        await follow(db, after)
    return before


async def with_field(db: AsyncDatabase[Doc], name: str) -> list[Doc]:
    return await db[CASES].find({name: {"$exists": True}}, {"_id": 1}).to_list()


async def expired_claims(db: AsyncDatabase[Doc], now: datetime, *, queue: str | None = None) -> list[Doc]:
    query: Doc = {"status": "assigned", "lease_until": {"$lt": now}}
    if queue is not None:
        query["queue"] = queue
    return await db[CASES].find(query, {"_id": 1}).to_list()


async def waiting_summary(db: AsyncDatabase[Doc], queues: list[str]) -> dict[str, tuple[int, Doc | None]]:
    """Per queue: how many cases wait, and the oldest of them (`_id`, `opened_at`).

    Each queue's summary is kept (`queue_summaries`) under the queue's change count and read
    again from its entries only when the queue changed since: the counts are read first, so a
    summary is never labelled with a count newer than what it was read from. A `$group` with
    `$min` would be one read on MongoDB, but FerretDB has no `$min`.
    """
    counts = await stamps(db)
    kept = {d["_id"]: d async for d in db[SUMMARIES].find({})}
    out: dict[str, tuple[int, Doc | None]] = {}
    for queue in queues:
        summary = kept.get(queue)
        if summary is None or summary.get("version") != counts.get(queue, 0):
            summary = await _summarise(db, queue, counts.get(queue, 0))
        oldest = {"_id": summary["oldest_id"], "opened_at": summary["oldest_opened_at"]}
        out[queue] = (int(summary["depth"]), oldest if summary["depth"] else None)
    return out


async def _summarise(db: AsyncDatabase[Doc], queue: str, count: int) -> Doc:
    """A queue's depth and oldest entry, read from its entries, kept under its change count."""
    depth, oldest = 0, None
    async for doc in db[WAITING].find({"queue": queue}, {"opened_at": 1}):
        depth += 1
        if oldest is None or (doc["opened_at"], doc["_id"]) < (oldest["opened_at"], oldest["_id"]):
            oldest = doc
    summary = {
        "_id": queue,
        "version": count,
        "depth": depth,
        "oldest_id": oldest["_id"] if oldest else None,
        "oldest_opened_at": oldest["opened_at"] if oldest else None,
    }
    await keep_newer(db[SUMMARIES], summary)
    return summary


async def load_by_assignee(db: AsyncDatabase[Doc], statuses: list[str]) -> list[dict[str, Any]]:
    """Per-officer count of cases in the given statuses."""
    pipeline: list[Doc] = [
        {"$match": {"status": {"$in": statuses}, "assignee": {"$ne": None}}},
        {"$group": {"_id": {"assignee": "$assignee", "status": "$status"}, "n": {"$sum": 1}}},
    ]
    cursor = await db[CASES].aggregate(pipeline)
    return await cursor.to_list()


# --- waiting cases: the queues' read model ----------------------------------------------------------
#
# The queue page and the queues' overview read every waiting case. Read from `cases`, each is a
# whole case (timeline, requests to missions) that the local FerretDB decodes in Go, 1-3 ms each,
# before it filters, projects and sorts: with 1,000 of 10,000 stored cases waiting, the desk's page
# took seconds (docs/performance.md). So the store keeps one small document per waiting case in
# `waiting_cases`, written right after each write of the case (`follow`) and guarded by the case's
# version (an older write never replaces a newer one); a case that leaves the queue takes its entry
# with it. On MongoDB the same small documents make the reads cheap too (no timelines in memory).
# A crash between a case's write and its entry's is repaired by the next delivery of the same event
# (service.change, on_incident) and by `rebuild_waiting` at every start.
#
# `queue_stamps` counts each queue's changes, bumped after its entries change: a reader that reads
# the stamps before the entries never labels old entries with a new stamp, so the stamps make an
# ETag, and an unchanged queue answers 304 after one read of a few tiny documents.

WAITING = "waiting_cases"
STAMPS = "queue_stamps"
SUMMARIES = "queue_summaries"  # each queue's depth and oldest, under its change count
# What the queue page and the overview show of a waiting case; a case's queue never changes.
ENTRY_FIELDS = (
    "queue",
    "region",
    "status",
    "country",
    "category",
    "severity",
    "priority",
    "escalation_level",
    "non_procedural",
    "worker_name",
    "mission_id",
    "assignee",
    "opened_at",
    "due_at",
)
ENTRY_PROJECTION: Doc = {**{f: 1 for f in ENTRY_FIELDS}, VERSION: 1}
# A queue's claim order (priority, nearest deadline, age), paged by its cursor.
WAITING_ORDER = Order(*QUEUE_ORDER, ("_id", ASCENDING))


def waiting_entry(case: Doc) -> Doc:
    """The waiting-cases document of a case (read with at least ENTRY_PROJECTION)."""
    fields = {f: case.get(f) for f in ENTRY_FIELDS}
    return {"_id": case["_id"], "version": int(case.get(VERSION) or 0), **fields}


async def follow(db: AsyncDatabase[Doc], case: Doc) -> None:
    """Bring the case's waiting entry up to `case` as just written: in while it waits, out once not.

    Safe with any number of replicas and in any order: each write is guarded by the version. Only
    an entry written in could be overtaken (an older write landing after the removal of a newer
    one), so after writing one in, the case is read again and followed again if it moved meanwhile.
    """
    for _ in range(10):
        version = int(case.get(VERSION) or 0)
        waiting = case.get("status") in WAITING_STATUSES
        if waiting:
            changed = await keep_newer(db[WAITING], waiting_entry(case))
        else:
            changed = await drop_unless_newer(db[WAITING], case["_id"], version)
        if not changed:
            return
        await _stamp(db, case.get("queue"))
        if not waiting:
            return
        current = await db[CASES].find_one({"_id": case["_id"]}, ENTRY_PROJECTION)
        if current is None or int(current.get(VERSION) or 0) == version:
            return
        case = current


async def _stamp(db: AsyncDatabase[Doc], queue: str | None) -> None:
    """Count a change of the queue (for its ETag)."""
    if queue is None:
        return
    try:
        await db[STAMPS].update_one({"_id": queue}, {"$inc": {"seq": 1}}, upsert=True)
    except DuplicateKeyError:  # two first changes of a queue at once: the other one inserted it
        await db[STAMPS].update_one({"_id": queue}, {"$inc": {"seq": 1}})


async def stamps(db: AsyncDatabase[Doc]) -> dict[str, int]:
    """Each queue's change count (a queue never changed is absent: 0)."""
    return {d["_id"]: int(d.get("seq") or 0) async for d in db[STAMPS].find({})}


async def waiting_in(
    db: AsyncDatabase[Doc], queue: str, *, limit: int, after: str | None = None
) -> list[Doc]:
    """The waiting cases of a queue in claim order, after a page cursor if given (index
    `queue, priority, due_at, opened_at, _id`)."""
    query = WAITING_ORDER.after({"queue": queue}, after)
    cursor = db[WAITING].find(query, {"version": 0}).sort(WAITING_ORDER.sort).limit(limit)
    return await cursor.to_list()


async def rebuild_waiting(db: AsyncDatabase[Doc]) -> int:
    """Bring every waiting entry up to its case (an existing database, or a crash between the two
    writes); safe while other replicas write. How many entries it changed or checked again.

    Missing entries are inserted in bulk (a database stored before the read model), then the
    waiting cases are read again and any of them that moved meanwhile is followed, as `follow`
    checks after each entry it writes in (one read of the waiting cases, not one per case: a
    filter on `_id` with `$in` reads every case on the local FerretDB); stale ones are followed
    one by one.
    """
    entries = {d["_id"]: d.get("version") async for d in db[WAITING].find({}, {"version": 1})}
    missing: list[Doc] = []
    stale: list[Doc] = []
    queues: set[str] = set()
    async for case in _waiting_cases(db):
        queues.add(str(case.get("queue")))
        held = entries.pop(case["_id"], "missing")
        if held == "missing":
            missing.append(case)
        elif held != int(case.get(VERSION) or 0):
            stale.append(case)
    for start in range(0, len(missing), 1000):
        batch = missing[start : start + 1000]
        try:
            await db[WAITING].insert_many([waiting_entry(c) for c in batch], ordered=False)
        except BulkWriteError as exc:  # written meanwhile by a replica's follow: that one stands
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
    if missing:
        now = {c["_id"]: c async for c in _waiting_cases(db)}
        for case in missing:
            current = now.get(case["_id"]) or await db[CASES].find_one({"_id": case["_id"]}, ENTRY_PROJECTION)
            if current is not None and int(current.get(VERSION) or 0) != int(case.get(VERSION) or 0):
                stale.append(current)
    for case in stale:
        await follow(db, case)
    for case_id in entries:  # entries of cases that no longer wait (or waited when read above)
        gone = await db[CASES].find_one({"_id": case_id}, ENTRY_PROJECTION)
        if gone is None:
            await db[WAITING].delete_one({"_id": case_id})
        else:
            await follow(db, gone)
    for queue in queues:  # a change whose stamp a crash lost shows again
        await _stamp(db, queue)
    return len(missing) + len(stale) + len(entries)


def _waiting_cases(db: AsyncDatabase[Doc]) -> Any:
    """The waiting cases' entry fields (index `status, queue, opened_at`)."""
    return db[CASES].find({"status": {"$in": sorted(WAITING_STATUSES)}}, ENTRY_PROJECTION)
