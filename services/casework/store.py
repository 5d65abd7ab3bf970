"""casework's MongoDB: one document a case, its timeline and outgoing events inside it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pymongo import ASCENDING, DESCENDING, DeleteOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.casework import domain
from shared.mongo import HIDDEN, Doc, bulk_write_parts
from shared.paging import Order
from shared.projection import older_than

CASES = "cases"
# Same-name suggestions that came before the case of the report they name (placement._suggest_back):
# one document a named incident, `_id` its incident id, the later reports' incident ids in `later`.
SUGGESTIONS_WAITING = "suggestions_waiting"
# The case each incident joined: `_id` the incident, `case_id` the case (find_placement). A case
# an incident opened needs no note: its id is derived from the incident's (changes.case_id_for).
PLACED = "placed"
PLACED_COMPLETE = "~complete"  # the marker: every join of this database is noted (handlers.fill_notes)
# Every case other than its own that an incident was ever written into (a join; a merge's survivor),
# noted before the write that puts it there: `_id` the incident, `cases` those cases. Never taken
# back (after an unmerge a note names a case that gave the incident back: a reader keeps only the
# cases that hold it). The case list by incident reads its cases by `_id` through them (holding_ids).
HOLDERS = "holders"
HOLDERS_COMPLETE = "~complete"  # the marker: every holder of this database is noted (handlers.fill_notes)
EARLIEST = datetime.min.replace(tzinfo=UTC)
PLACEMENT_PROJECTION: Doc = {"_outbox": 0, "timeline": 0}
# Every write of a case through this module adds one to its change count, in the same write: the
# waiting cases' read model (below) orders what it reads of a case by it. Absent is 0.
VERSION = "_version"
# Bookkeeping no answer shows: outbox, applied event ids, a claim's pending event, the change count.
PROJECTION: Doc = {**HIDDEN, "_claim_pending": 0, VERSION: 0}

# Queue order: priority (high first), then nearest deadline, then age.
QUEUE_ORDER = [("priority", DESCENDING), ("due_at", ASCENDING), ("opened_at", ASCENDING)]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[CASES].create_index([("incident_ids", 1)])
    await db[CASES].create_index([("worker_keys", 1)])  # cases about a worker (GET /v1/cases, export)
    # At most one open case per worker and category family; closed cases hold a unique dummy key.
    await db[CASES].create_index([("open_key", 1)], unique=True)
    await db[CASES].create_index([("queue", 1), ("status", 1), *QUEUE_ORDER])
    await db[CASES].create_index([("status", 1), ("queue", 1), ("opened_at", 1)])  # cases_in (the fills)
    await db[CASES].create_index([("status", 1), ("lease_until", 1)])
    await db[CASES].create_index([("assignee", 1), ("status", 1)])
    await db[CASES].create_index([("awaiting_missions", 1), ("opened_at", 1)])  # missions' inboxes
    await db[CASES].create_index([("status", 1), ("closed_at", 1)])  # retention
    # the sweep's read of claims whose event is still to write (with_field): a few among every case
    await db[CASES].create_index([("_claim_pending", 1)], sparse=True)
    await db[WAITING].create_index([("queue", 1), *WAITING_ORDER])  # a queue's listing (waiting_in)
    await db[WAITING].create_index(SUMMARY_ORDER)  # the overview (waiting_summary)
    await db[LOADS].create_index([("status", 1), ("assignee", 1)])  # supervision (load_by_assignee)


def _counted(update_doc: Doc) -> Doc:
    """The update with the case's change count raised by one."""
    out = {op: dict(fields) for op, fields in update_doc.items()}
    out.setdefault("$inc", {})[VERSION] = 1
    return out


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
        {"_id": case["_id"], "status": "closed", "updated_at": case.get("updated_at")}, _counted(update)
    )
    return result.modified_count == 1


async def get(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    return await db[CASES].find_one({"_id": case_id}, PROJECTION)


async def get_raw(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    """A case with its bookkeeping (applied event ids), for handlers and transitions."""
    return await db[CASES].find_one({"_id": case_id}, {"_outbox": 0})


async def find_open(db: AsyncDatabase[Doc], open_key: str) -> Doc | None:
    return await db[CASES].find_one({"open_key": open_key}, {"_outbox": 0})


async def wait_suggestion(db: AsyncDatabase[Doc], *, earlier: str, later: str) -> None:
    """Keep a later report's suggestion for the case the earlier report has not opened yet."""
    await db[SUGGESTIONS_WAITING].update_one({"_id": earlier}, {"$addToSet": {"later": later}}, upsert=True)


async def waiting_suggestions(db: AsyncDatabase[Doc], incident_id: str) -> list[str]:
    """The later reports whose suggestion of this incident waits for its case."""
    doc = await db[SUGGESTIONS_WAITING].find_one({"_id": incident_id})
    return list(doc.get("later") or []) if doc else []


async def clear_waiting_suggestions(db: AsyncDatabase[Doc], incident_id: str) -> None:
    await db[SUGGESTIONS_WAITING].delete_one({"_id": incident_id})


async def find_placement(
    db: AsyncDatabase[Doc], *, incident_id: str, case_id: str, open_key: str | None
) -> list[Doc]:
    """The cases that hold an incident (`cases_holding`; `case_id` the one it would open), and the
    open case holding a worker's family key."""
    # Reads by key, never an `$or`: each is served by its own index on MongoDB, and on the local
    # FerretDB only a top-level key is handed to SQLite (an `$or` would read every case).
    found = await cases_holding(db, {incident_id: case_id})
    if open_key is not None and not any(d.get("open_key") == open_key for d in found):
        holder = await db[CASES].find_one({"open_key": open_key}, PLACEMENT_PROJECTION)
        if holder is not None:
            found.append(holder)
    return found


async def cases_holding(db: AsyncDatabase[Doc], opened_by: dict[str, str]) -> list[Doc]:
    """The cases that hold any of these incidents (`opened_by`: incident id -> the id of the case
    it opened or would open, changes.case_id_for), oldest first.

    By `_id` only, so the cost does not grow with the cases stored: an incident is held by the
    case it opened, or by the case it joined, noted in PLACED before the join's write
    (`note_join`), and after a merge also by the survivor (the absorbed case keeps it and names
    the survivor, `merged_into`). Only when a join was noted and no case read holds the incident
    (a crash between the two writes, or the case changed before the join) is every case asked, by
    `incident_ids` (an index on MongoDB; a read of every case on the local FerretDB, which cannot
    index an array: issue 11).
    """
    wanted = list(opened_by)
    notes = _joins(await db[PLACED].find({"_id": {"$in": wanted}}).to_list())
    ids = set(opened_by.values()) | {n["case_id"] for n in notes}
    found: dict[str, Doc] = {}
    # Each merge followed to its survivor, however long the chain: one read a step, and a case
    # read once (a chain that came back on itself ends there).
    while todo := sorted(ids - found.keys()):
        for doc in await db[CASES].find({"_id": {"$in": todo}}, PLACEMENT_PROJECTION).to_list():
            found[doc["_id"]] = doc
        ids = {d["merged_into"] for d in found.values() if d.get("merged_into")}
    held = {i for d in found.values() for i in d.get("incident_ids") or []}
    doubt = [n["_id"] for n in notes if n["_id"] not in held]
    if doubt:
        everywhere = db[CASES].find({"incident_ids": {"$in": doubt}}, PLACEMENT_PROJECTION)
        found.update((d["_id"], d) for d in await everywhere.to_list())
    holding = [d for d in found.values() if set(d.get("incident_ids") or []) & opened_by.keys()]
    return sorted(holding, key=lambda d: (d.get("opened_at") or EARLIEST, d["_id"]))


def _joins(notes: list[Doc]) -> list[Doc]:
    """The notes of joins among PLACED's documents read: not its marker (an id asked for may be
    any string, "~complete" too)."""
    return [n for n in notes if "case_id" in n]


async def noted_join(db: AsyncDatabase[Doc], incident_id: str) -> bool:
    """Whether the incident was ever noted joining a case (note_join)."""
    return await db[PLACED].find_one({"_id": incident_id}, {"_id": 1}) is not None


async def note_join(db: AsyncDatabase[Doc], incident_id: str, case_id: str) -> None:
    """Note, before the join's write, the case an incident is joining (find_placement reads it;
    the case list by incident, its holders)."""
    await note_holders(db, [incident_id], case_id)
    # never join unnoted (a later redelivery could not find the case): the handler retries
    await _upserted(
        partial(db[PLACED].replace_one, {"_id": incident_id}, {"case_id": case_id}, upsert=True),
        f"could not note the join of incident {incident_id}",
    )


async def note_holders(db: AsyncDatabase[Doc], incident_ids: list[str], case_id: str) -> None:
    """Note, before the write that puts them there, that these incidents are going into this case."""
    add = {"$addToSet": {"cases": case_id}}
    for incident_id in incident_ids:
        await _upserted(
            partial(db[HOLDERS].update_one, {"_id": incident_id}, add, upsert=True),
            f"could not note incident {incident_id} going into case {case_id}",
        )


async def _upserted(write: Callable[[], Awaitable[object]], failed: str) -> None:
    """An upsert of a note, once more when another replica's note made the document at this
    instant (a duplicate key: the second try writes over it or adds to it)."""
    for _ in range(2):
        try:
            await write()
            return
        except DuplicateKeyError:
            continue
    raise RuntimeError(failed)


async def holding_ids(db: AsyncDatabase[Doc], opened_by: dict[str, str]) -> list[str] | None:
    """The ids of every case that holds, or once held, any of these incidents (`opened_by`: incident
    id -> the case it opened or would open): its own case, and those noted (note_holders; and the
    join noted in PLACED, which a replica still on code from before the holders' notes writes).
    None while the notes are not known complete (a database from before them, not filled yet):
    the marker is read with the notes."""
    wanted = list(opened_by)
    notes, joins = await asyncio.gather(
        db[HOLDERS].find({"_id": {"$in": [*wanted, HOLDERS_COMPLETE]}}).to_list(),
        db[PLACED].find({"_id": {"$in": wanted}}).to_list(),
    )
    if not any(note["_id"] == HOLDERS_COMPLETE for note in notes):
        return None
    noted = {c for note in notes for c in note.get("cases") or []} | {j["case_id"] for j in _joins(joins)}
    return sorted(set(opened_by.values()) | noted)


async def holders_complete(db: AsyncDatabase[Doc]) -> bool:
    """Whether every holder this database holds is noted in HOLDERS (handlers.fill_notes has run)."""
    return await _marked(db[HOLDERS], HOLDERS_COMPLETE)


async def mark_holders_complete(db: AsyncDatabase[Doc]) -> None:
    await _mark(db[HOLDERS], HOLDERS_COMPLETE)


async def placed_complete(db: AsyncDatabase[Doc]) -> bool:
    """Whether every join this database holds is noted in PLACED (handlers.fill_notes has run)."""
    return await _marked(db[PLACED], PLACED_COMPLETE)


async def mark_placed_complete(db: AsyncDatabase[Doc]) -> None:
    await _mark(db[PLACED], PLACED_COMPLETE)


async def _marked(coll: AsyncCollection[Doc], marker: str) -> bool:
    return await coll.find_one({"_id": marker}, {"_id": 1}) is not None


async def _mark(coll: AsyncCollection[Doc], marker: str) -> None:
    try:
        await coll.insert_one({"_id": marker})
    except DuplicateKeyError:
        pass  # another replica's fill got there first


async def incidents_held(db: AsyncDatabase[Doc]) -> list[Doc]:
    """Every case's id and incidents (handlers.fill_notes, once per database: it reads every case)."""
    return await db[CASES].find({}, {"incident_ids": 1}).to_list()


# The order of case lists (GET /v1/cases), oldest first; its cursor pages them.
LIST_ORDER = Order(("opened_at", ASCENDING), ("_id", ASCENDING))


async def find(
    db: AsyncDatabase[Doc], query: Doc, *, limit: int = 100, after: str | None = None
) -> list[Doc]:
    """Cases in list order, after a page cursor if given."""
    return await LIST_ORDER.read(db[CASES], query, limit=limit, after=after, projection=PROJECTION)


async def update(db: AsyncDatabase[Doc], query: Doc, update_doc: Doc) -> Doc | None:
    """Apply one update if the query still matches; the case after it, or None."""
    doc = await db[CASES].find_one_and_update(
        query, _counted(update_doc), return_document=ReturnDocument.AFTER
    )
    return strip(doc) if doc is not None else None


# What claim_head reads of each status's head, and guards its claim by: its place in queue order.
HEAD_FIELDS: Doc = {"status": 1, **{f: 1 for f, _ in QUEUE_ORDER}}
CLAIM_TRIES = 5


def queue_place(case: Doc) -> tuple[Any, ...]:
    """A case's place in QUEUE_ORDER, for min(): priority high first, then nearest deadline, then
    age; a missing value where MongoDB puts it (a missing priority last, a missing date first)."""
    p, due, opened = case.get("priority"), case.get("due_at"), case.get("opened_at")
    return (
        (1, 0) if p is None else (0, -p),
        (0, EARLIEST) if due is None else (1, due),
        (0, EARLIEST) if opened is None else (1, opened),
    )


async def claim_head(db: AsyncDatabase[Doc], queue: str, statuses: list[str], update_doc: Doc) -> Doc | None:
    """Atomically take the head of a queue (its cases in these statuses) in queue order; the case as
    it was before, or None if none waits.

    Each status's head is read alone, an equality on every key before the sort (index `queue,
    status, priority, due_at, opened_at`), which the database walks in order and stops at the first:
    the cost of a claim does not grow with the queue's depth (a find with `status: {$in: ...}` sorts
    every waiting case of the queue; on the local FerretDB, 0.2-0.35 s at a national year). The first
    of the heads is then taken by a write guarded by its status and its place in the order: two
    officers never get the same case, and a case whose priority or deadline moved meanwhile is not
    taken on the old reading; then the heads are read again. After CLAIM_TRIES such races, one write
    over the whole queue with its sort, as before, which the database makes atomic.
    """
    for _ in range(CLAIM_TRIES):
        heads = []
        for status in statuses:
            head = await db[CASES].find_one({"queue": queue, "status": status}, HEAD_FIELDS, sort=QUEUE_ORDER)
            if head is not None:
                heads.append(head)
        if not heads:
            return None
        first = min(heads, key=queue_place)
        # guarded by what put it first too: a case whose priority or deadline moved since is read
        # again (None matches a missing field as well, as the sort treats it)
        guard = {f: first.get(f) for f in HEAD_FIELDS}
        before = await db[CASES].find_one_and_update(
            {"_id": first["_id"], "queue": queue, **guard},
            _counted(update_doc),
            return_document=ReturnDocument.BEFORE,
        )
        if before is not None:
            return before
    return await db[CASES].find_one_and_update(
        {"queue": queue, "status": {"$in": statuses}},
        _counted(update_doc),
        sort=QUEUE_ORDER,
        return_document=ReturnDocument.BEFORE,
    )


async def with_field(db: AsyncDatabase[Doc], name: str) -> list[Doc]:
    """The cases carrying a marker field (an index on it is declared: a sweep reads it every pass)."""
    return await db[CASES].find({name: {"$exists": True}}, {"_id": 1}).to_list()


async def expired_claims(db: AsyncDatabase[Doc], now: datetime, *, queue: str | None = None) -> list[Doc]:
    query: Doc = {"status": "assigned", "lease_until": {"$lt": now}}
    if queue is not None:
        query["queue"] = queue
    return await db[CASES].find(query, {"_id": 1}).to_list()


async def load_by_assignee(db: AsyncDatabase[Doc], statuses: list[str]) -> list[dict[str, Any]]:
    """Per-officer count of cases in the given statuses, from the load entries (LOADS)."""
    pipeline: list[Doc] = [
        {"$match": {"status": {"$in": statuses}, "assignee": {"$ne": None}}},
        {"$group": {"_id": {"assignee": "$assignee", "status": "$status"}, "n": {"$sum": 1}}},
    ]
    cursor = await db[LOADS].aggregate(pipeline)
    return await cursor.to_list()


# --- worked cases: the officers' load ----------------------------------------------------------------
#
# Supervision counts each officer's cases by status. Counted from `cases`, every worked case of the
# year was read whole (timeline and all: the local FerretDB decodes each before it groups), 9.4 s on
# a year's data (issue 11). So the follower of the case events that keeps the waiting entries keeps
# one small entry per worked case too (`_id`, assignee, status, the case's change count), and
# nothing for any other case.

LOADS = "loads"


async def keep_loads(db: AsyncDatabase[Doc], cases: list[Doc]) -> set[str]:
    """Bring the load entries of these cases (read with ENTRY_SOURCE) to them in one bulk write: in
    while an officer works the case, unless a newer version is stored; out otherwise. The ids whose
    entry was written in."""
    ops: list[ReplaceOne | DeleteOne] = []
    for case in cases:
        version = version_of(case)
        if case.get("status") in domain.WORKED and case.get("assignee"):
            entry = {
                "_id": case["_id"],
                "version": version,
                "assignee": case["assignee"],
                "status": case["status"],
            }
            ops.append(ReplaceOne(older_than(entry), entry, upsert=True))
        else:
            ops.append(DeleteOne({"_id": case["_id"], "version": {"$lte": version}}))
    clashed = await bulk_write_parts(db[LOADS], ops)  # a clash: this version or a newer one is stored
    return {
        case["_id"]
        for i, (case, op) in enumerate(zip(cases, ops, strict=True))
        if isinstance(op, ReplaceOne) and i not in clashed
    }


def same_load(read: Doc, now: Doc | None) -> bool:
    """Whether a case read now still has the load entry of an earlier read (its officer and a
    worked status). A later change that keeps both (a note, a step) is no reason to follow the
    case again: any change of either comes with its own event, whose follower reads it."""
    return now is not None and all(now.get(f) == read.get(f) for f in ("status", "assignee"))


async def any_load_entry(db: AsyncDatabase[Doc]) -> bool:
    return await db[LOADS].find_one({}, {"_id": 1}) is not None


# --- waiting cases: the queues' read model ----------------------------------------------------------
#
# The queue listing and the queues' overview read every waiting case. Read from `cases`, each is a
# whole case (timeline, requests to missions) that the local FerretDB decodes in Go, 1-3 ms each,
# before it filters and sorts: with 1,000 of 10,000 stored cases waiting, the desk's page took
# seconds and everything else waited behind it (docs/console.md). So casework keeps one small
# document per waiting case in `waiting`, from its own case events (handlers.case_handlers, a
# projection with its own consumer group: no write is added to a case's change). An entry carries
# the case's change count (`version`): an older read of a case never replaces a newer entry.

WAITING = "waiting"
# What the queue listing (QueueCase) and the overview show of a waiting case, and its claim order.
WAITING_FIELDS = (
    "queue",
    "status",
    "priority",
    "severity",
    "category",
    "country",
    "due_at",
    "opened_at",
    "escalation_level",
    "non_procedural",
    "worker_name",
    "mission_id",
)
# A case read for its entry: the entry's fields, its change count (never the timeline).
ENTRY_SOURCE: Doc = {**{f: 1 for f in WAITING_FIELDS}, "assignee": 1, VERSION: 1}
# Claim order (store.claim_head's), then `_id` so that equal cases list alike every time.
WAITING_ORDER = [*QUEUE_ORDER, ("_id", ASCENDING)]
# The overview's order: by queue, oldest first.
SUMMARY_ORDER = [("queue", ASCENDING), ("opened_at", ASCENDING), ("_id", ASCENDING)]


def version_of(case: Doc) -> int:
    """A case's change count (0 for a case stored before counting, or never changed)."""
    return int(case.get(VERSION) or 0)


def waiting_entry(case: Doc) -> Doc:
    """The `waiting` document of a case read with ENTRY_SOURCE."""
    return {"_id": case["_id"], "version": version_of(case), **{f: case.get(f) for f in WAITING_FIELDS}}


async def entry_sources(db: AsyncDatabase[Doc], case_ids: list[str]) -> list[Doc]:
    """Cases as their entries need them (by `_id`; a case that does not exist is left out)."""
    return await db[CASES].find({"_id": {"$in": case_ids}}, ENTRY_SOURCE).to_list()


async def entry_source(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    """One case as its entries need it."""
    found = await entry_sources(db, [case_id])
    return found[0] if found else None


def queues_named(entry: Doc | None) -> set[str]:
    """The queues an entry's write changes: the one it is in (a tombstone: none) and those it `left`."""
    if entry is None:
        return set()
    return {q for q in [entry.get("queue"), *(entry.get("left") or [])] if q}


async def keep_waiting(db: AsyncDatabase[Doc], cases: list[Doc], now: datetime) -> list[str]:
    """Bring the `waiting` entries of these cases (read with ENTRY_SOURCE) to them, in a few round
    trips whatever their number: a waiting case's entry in, unless a newer version of the case is
    stored; a case that no longer waits out; then the stamps of every queue changed (see STAMPS).
    The ids of the waiting cases whose entry holds the version read now (written here, or already
    there): their follower reads the case's count again (handlers.follow_cases).

    The stamps move after the writes, and again when the same version comes back (a redelivery,
    or a second event of one write: the queues that entry names), so that a crash between the two
    is healed by the redelivery. A removal is in three steps for the same reason: the entry
    becomes a tombstone (`queue` None, so no listing or count shows it; `left` names its queue),
    the stamps move, then the tombstone goes. Most case events are about cases that do not wait
    (worked, closed): they find no entry, and write nothing.
    """
    if not cases:
        return []
    ids = [c["_id"] for c in cases]
    stored = {
        d["_id"]: d
        async for d in db[WAITING].find({"_id": {"$in": ids}}, {"queue": 1, "left": 1, "version": 1})
    }
    changed: set[str] = set()
    held: list[str] = []
    entries: list[Doc] = []  # the waiting cases' entries to write, in the order of `writes`
    writes: list[ReplaceOne] = []
    tombs: list[UpdateOne] = []
    gone: list[DeleteOne] = []
    for case in cases:
        old, version = stored.get(case["_id"]), version_of(case)
        if case.get("status") not in domain.WAITING:
            if old is None or old["version"] > version:
                continue  # nothing waits, or a newer version wrote it: its writer moves the stamps
            if old.get("queue") is not None:
                tomb = {"queue": None, "left": sorted(queues_named(old)), "version": version}
                tombs.append(UpdateOne({"_id": case["_id"], "version": {"$lte": version}}, {"$set": tomb}))
            changed |= queues_named(old)
            gone.append(DeleteOne({"_id": case["_id"], "queue": None, "version": {"$lte": version}}))
            continue
        if old is not None and old["version"] >= version:
            if old["version"] == version:
                changed |= queues_named(old)
                held.append(case["_id"])
            continue  # else a newer version is stored: its writer moves the stamps
        entry = waiting_entry(case)
        # the queue it was in (a tombstone's: those it names), not older ones, so that `left` stays short
        behind = set() if old is None else {old["queue"]} if old.get("queue") else queues_named(old)
        entry["left"] = sorted(behind - {entry["queue"]})
        entries.append(entry)
        writes.append(ReplaceOne(older_than(entry), entry, upsert=True))
    await bulk_write_parts(db[WAITING], tombs)  # a tombstone over a newer version matches nothing
    clashed = await bulk_write_parts(db[WAITING], writes)  # a clash: this version or a newer one is there
    for i, entry in enumerate(entries):
        if i not in clashed:
            changed |= queues_named(entry)
            held.append(entry["_id"])
    # a stamp moved for a write that lost to a newer one costs a cached answer, nothing more
    await bump_stamps(db, changed, now)
    await bulk_write_parts(db[WAITING], gone)
    return held


# Per queue, a change stamp (`n`, raised by one, and `at`) moved by the follower after every
# write of one of its entries, and again on a redelivery: what casework's queue reads are cached
# by in each replica (services/casework/queue_cache.py). One small document per queue, read whole.
STAMPS = "waiting_stamps"
Stamp = tuple[int, Any] | None  # (n, at); None: the queue's entries never changed since the store began


async def bump_stamps(db: AsyncDatabase[Doc], queues: set[str], now: datetime) -> None:
    """Move the stamps of these queues (after their entries were written), in one bulk write."""
    names = sorted(q for q in queues if q)
    change = {"$inc": {"n": 1}, "$set": {"at": now}}
    clashed = await bulk_write_parts(db[STAMPS], [UpdateOne({"_id": q}, change, upsert=True) for q in names])
    # two first upserts of one queue raced: the document is there now
    await bulk_write_parts(db[STAMPS], [UpdateOne({"_id": names[i]}, change) for i in sorted(clashed)])


async def stamps(db: AsyncDatabase[Doc]) -> dict[str, Stamp]:
    """Every queue's change stamp (a queue that never changed has none)."""
    return {d["_id"]: (d["n"], d.get("at")) async for d in db[STAMPS].find({})}


async def stamp(db: AsyncDatabase[Doc], queue: str) -> Stamp:
    """One queue's change stamp."""
    d = await db[STAMPS].find_one({"_id": queue})
    return None if d is None else (d["n"], d.get("at"))


async def any_waiting_entry(db: AsyncDatabase[Doc]) -> bool:
    return await db[WAITING].find_one({}, {"_id": 1}) is not None


async def cases_in(db: AsyncDatabase[Doc], statuses: list[str]) -> list[Doc]:
    """Every case in these statuses as its entries need it (index `status, queue, opened_at`): the fills
    at start (waiting cases, worked cases)."""
    return await db[CASES].find({"status": {"$in": statuses}}, ENTRY_SOURCE).to_list()


async def waiting_in(db: AsyncDatabase[Doc], queue: str, *, limit: int) -> list[Doc]:
    """The entries of a queue in claim order (index `queue, priority, due_at, opened_at, _id`)."""
    cursor = db[WAITING].find({"queue": queue}, {"version": 0, "left": 0}).sort(WAITING_ORDER).limit(limit)
    return await cursor.to_list()


async def waiting_summary(
    db: AsyncDatabase[Doc], queues: list[str] | None = None
) -> dict[str, tuple[int, Doc]]:
    """Per queue with cases waiting (of `queues`, or all): how many, and the oldest of them (`_id`,
    `opened_at`).

    One read of the entries' queue and age in the order of the index `queue, opened_at, _id`
    (covered on MongoDB: no entry is fetched), so a queue's first entry is its oldest; not two
    reads per queue, and no `$group` with `$min`, which FerretDB does not have. Tombstones (queue
    None, see leave_waiting) are skipped.
    """
    out: dict[str, tuple[int, Doc]] = {}
    query: Doc = {} if queues is None else {"queue": {"$in": sorted(queues)}}
    cursor = db[WAITING].find(query, {"queue": 1, "opened_at": 1}).sort(SUMMARY_ORDER)
    async for doc in cursor:
        if doc.get("queue") is None:
            continue
        n, oldest = out.get(doc["queue"], (0, doc))
        out[doc["queue"]] = (n + 1, oldest)
    return out
