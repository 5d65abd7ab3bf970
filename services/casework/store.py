"""casework's MongoDB: one document a case, its timeline and outgoing events inside it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import HIDDEN, Doc
from shared.paging import Order

CASES = "cases"
# Bookkeeping no answer shows: outbox, applied event ids, a claim's pending event.
PROJECTION: Doc = {**HIDDEN, "_claim_pending": 0}

# Queue order: priority (high first), then nearest deadline, then age.
QUEUE_ORDER = [("priority", DESCENDING), ("due_at", ASCENDING), ("opened_at", ASCENDING)]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[CASES].create_index([("incident_ids", 1)])
    await db[CASES].create_index([("worker_keys", 1)])  # cases about a worker (GET /v1/cases, export)
    # At most one open case per worker and category family; closed cases hold a unique dummy key.
    await db[CASES].create_index([("open_key", 1)], unique=True)
    await db[CASES].create_index([("queue", 1), ("status", 1), *QUEUE_ORDER])
    await db[CASES].create_index([("status", 1), ("queue", 1), ("opened_at", 1)])  # the queues' summary
    await db[CASES].create_index([("status", 1), ("lease_until", 1)])
    await db[CASES].create_index([("assignee", 1), ("status", 1)])
    await db[CASES].create_index([("awaiting_missions", 1), ("opened_at", 1)])  # missions' inboxes
    await db[CASES].create_index([("status", 1), ("closed_at", 1)])  # retention


def strip(doc: Doc) -> Doc:
    """A case without its bookkeeping fields."""
    return {k: v for k, v in doc.items() if k not in PROJECTION}


async def insert_new(db: AsyncDatabase[Doc], doc: Doc) -> str:
    """Insert a case: 'inserted', 'exists' (same id: applied before) or 'open_key' (an open case holds it)."""
    try:
        await db[CASES].insert_one(doc)
    except DuplicateKeyError:
        if await db[CASES].count_documents({"_id": doc["_id"]}, limit=1):
            return "exists"
        return "open_key"
    return "inserted"


async def closed_before(db: AsyncDatabase[Doc], cutoff: Any, limit: int) -> list[Doc]:
    """Cases closed before `cutoff` and not anonymised yet (retention)."""
    query = {"status": "closed", "closed_at": {"$lte": cutoff}, "anonymised_at": None}
    return await db[CASES].find(query, PROJECTION).limit(limit).to_list()


async def anonymise(db: AsyncDatabase[Doc], case: Doc, update: Doc) -> bool:
    """Write an anonymised case (and its event) if it is still closed and unchanged since read."""
    result = await db[CASES].update_one(
        {"_id": case["_id"], "status": "closed", "updated_at": case.get("updated_at")}, update
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
    doc = await db[CASES].find_one_and_update(query, update_doc, return_document=ReturnDocument.AFTER)
    return strip(doc) if doc is not None else None


async def claim_head(db: AsyncDatabase[Doc], query: Doc, update_doc: Doc) -> Doc | None:
    """Atomically take the head of a queue (its query) in queue order; the case as it was before."""
    return await db[CASES].find_one_and_update(
        query, update_doc, sort=QUEUE_ORDER, return_document=ReturnDocument.BEFORE
    )


async def waiting_in(db: AsyncDatabase[Doc], queue: str, statuses: list[str], *, limit: int) -> list[Doc]:
    """The waiting cases of a queue in claim order, without their timelines."""
    query = {"queue": queue, "status": {"$in": statuses}}
    cursor = db[CASES].find(query, {**PROJECTION, "timeline": 0, "mission_requests": 0})
    return await cursor.sort([*QUEUE_ORDER, ("_id", ASCENDING)]).limit(limit).to_list()


async def with_field(db: AsyncDatabase[Doc], name: str) -> list[Doc]:
    return await db[CASES].find({name: {"$exists": True}}, {"_id": 1}).to_list()


async def expired_claims(db: AsyncDatabase[Doc], now: datetime, *, queue: str | None = None) -> list[Doc]:
    query: Doc = {"status": "assigned", "lease_until": {"$lt": now}}
    if queue is not None:
        query["queue"] = queue
    return await db[CASES].find(query, {"_id": 1}).to_list()


async def waiting_summary(db: AsyncDatabase[Doc], statuses: list[str]) -> dict[str, tuple[int, Doc | None]]:
    """Per queue: how many cases wait, and the oldest of them (`_id`, `opened_at`).

    One read of the waiting cases' queue and age (index `status, queue, opened_at`), not two per
    queue: a `$group` with `$min` would be one step less on MongoDB, but FerretDB has no `$min`.
    """
    out: dict[str, tuple[int, Doc | None]] = {}
    cursor = db[CASES].find({"status": {"$in": statuses}}, {"queue": 1, "opened_at": 1})
    async for doc in cursor:
        n, oldest = out.get(doc["queue"], (0, None))
        if oldest is None or (doc["opened_at"], doc["_id"]) < (oldest["opened_at"], oldest["_id"]):
            oldest = doc
        out[doc["queue"]] = (n + 1, oldest)
    return out


async def load_by_assignee(db: AsyncDatabase[Doc], statuses: list[str]) -> list[dict[str, Any]]:
    """Per-officer count of cases in the given statuses."""
    pipeline: list[Doc] = [
        {"$match": {"status": {"$in": statuses}, "assignee": {"$ne": None}}},
        {"$group": {"_id": {"assignee": "$assignee", "status": "$status"}, "n": {"$sum": 1}}},
    ]
    cursor = await db[CASES].aggregate(pipeline)
    return await cursor.to_list()
