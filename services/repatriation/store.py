"""repatriation's MongoDB: workflows (one document each, steps and outbox inside), evacuees, departures."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.repatriation.steps import Workflow, WorkflowStatus
from shared.events.registry import DepartureRecorded, DepartureStatus
from shared.mongo import HIDDEN, Doc, applied_once, insert_new, merge_updates
from shared.paging import Order
from shared.projection import keep_newer

WORKFLOWS = "workflows"
EVACUEES = "evacuees"
DEPARTURES = "departures"  # our own projection of registry's DepartureRecorded
CASES = "cases"  # our own projection of casework's CaseOpened: which cases exist, and where

# Who counts as abroad for an evacuation: departed (on the way or just landed) or working there.
ABROAD = [DepartureStatus.DEPARTED.value, DepartureStatus.ACTIVE_ABROAD.value]
BATCH = 1000


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Indexes, including the one that keeps one live workflow per case and kind."""
    # Unique and sparse: live_key is set only while a workflow is live, so finished ones never
    # clash. (FerretDB has no partial indexes; sparse unique behaves the same there and on MongoDB.)
    await db[WORKFLOWS].create_index([("live_key", 1)], unique=True, sparse=True, name="one_live_per_kind")
    await db[WORKFLOWS].create_index([("case_id", 1), ("kind", 1)])
    await db[WORKFLOWS].create_index([("home_province", 1), ("status", 1)])
    await db[WORKFLOWS].create_index([("worker_id", 1), ("status", 1)])
    await db[WORKFLOWS].create_index([("fanout.status", 1)])
    await db[WORKFLOWS].create_index([("kind", 1), ("status", 1)])  # live evacuations of a country
    await db[EVACUEES].create_index([("evacuation_id", 1), ("status", 1)])
    await db[EVACUEES].create_index([("worker_id", 1)])
    await db[EVACUEES].create_index([("home_province", 1), ("status", 1)])
    await db[DEPARTURES].create_index([("destination_country", 1), ("status", 1)])
    await db[DEPARTURES].create_index([("worker_id", 1)])


def live_key(wf: Workflow) -> str | None:
    """The key only one live workflow may hold: per case and kind, or per area for an evacuation."""
    if wf.case_id:
        return f"{wf.case_id}:{wf.kind}"
    if wf.kind == "evacuation":
        return f"{wf.kind}:{wf.country}:{wf.region or '*'}"
    worker = wf.worker_id or wf.worker_key
    return f"worker:{worker}:{wf.kind}" if worker else None


def to_doc(wf: Workflow) -> Doc:
    doc = wf.model_dump(mode="python", exclude={"id"})
    return {"_id": wf.id, **doc}


def from_doc(doc: Doc) -> Workflow:
    data = {
        k: v for k, v in doc.items() if not k.startswith("_") and k not in ("timeline", "live_key", "fanout")
    }
    return Workflow(id=doc["_id"], **data)


async def insert_workflow(
    db: AsyncDatabase[Doc], doc: Doc
) -> tuple[Literal["inserted", "exists", "live"], Doc]:
    """Insert a new workflow; else say whether this very one exists or another live one holds its key."""
    try:
        await db[WORKFLOWS].insert_one(doc)
        return "inserted", doc
    except DuplicateKeyError:
        same = await db[WORKFLOWS].find_one({"_id": doc["_id"]}, HIDDEN)
        if same is not None:
            return "exists", same
        other = await db[WORKFLOWS].find_one({"live_key": doc.get("live_key")}, HIDDEN)
        if other is not None:
            return "live", other
        raise  # the live one finished in between: the caller retries


async def get(db: AsyncDatabase[Doc], workflow_id: str, *, with_internals: bool = False) -> Doc | None:
    return await db[WORKFLOWS].find_one({"_id": workflow_id}, None if with_internals else HIDDEN)


async def save(
    db: AsyncDatabase[Doc],
    wf: Workflow,
    *,
    expected_version: int,
    update: Doc,
    filter_extra: Doc | None = None,
) -> Doc | None:
    """Write a workflow after a decision if nobody changed it meanwhile; None on a lost race."""
    fields = wf.model_dump(mode="python", exclude={"id", "version"})
    upd: Doc = {op: dict(v) for op, v in update.items()}
    upd.setdefault("$set", {}).update(fields)
    upd["$inc"] = {"version": 1}
    if wf.status != WorkflowStatus.ACTIVE:
        upd.setdefault("$unset", {})["live_key"] = ""  # frees the key for a later workflow
    return await db[WORKFLOWS].find_one_and_update(
        {"_id": wf.id, "version": expected_version, **(filter_extra or {})},
        upd,
        return_document=ReturnDocument.AFTER,
    )


# The order of workflow lists, newest first; its cursor pages them.
LIST_ORDER = Order(("started_at", -1), ("_id", 1))


async def find(
    db: AsyncDatabase[Doc],
    query: Doc,
    *,
    limit: int = 100,
    after: str | None = None,
    now: datetime | None = None,
) -> list[Doc]:
    """Workflows newest first; given `now`, a window of time back from it at a time (Order.read)."""
    hidden = {**HIDDEN, "timeline": 0}
    return await LIST_ORDER.read(db[WORKFLOWS], query, limit=limit, after=after, projection=hidden, now=now)


async def live_for_worker(db: AsyncDatabase[Doc], worker_id: str) -> list[Doc]:
    return await db[WORKFLOWS].find({"worker_id": worker_id, "status": "active"}).to_list()


async def live_without_home(
    db: AsyncDatabase[Doc], *, worker_id: str | None = None, case_id: str | None = None
) -> list[Doc]:
    """Live workflows of a worker (index: worker_id, status) or a case (index: case_id, kind) whose
    home province is unknown: they were started before the departure or the match was known."""
    if not (worker_id or case_id):
        return []
    query: Doc = {"worker_id": worker_id} if worker_id else {"case_id": case_id}
    query |= {"status": "active", "home_province": {"$in": [None, ""]}}
    return await db[WORKFLOWS].find(query, {"_id": 1}).to_list()


async def note_request(db: AsyncDatabase[Doc], workflow_id: str, entry: Doc, event_id: str) -> None:
    """Put a request that found this workflow already live on its timeline, once."""
    once_filter, once_update = applied_once(event_id)
    await db[WORKFLOWS].update_one(
        {"_id": workflow_id, **once_filter}, merge_updates({"$push": {"timeline": entry}}, once_update)
    )


# ---------------------------------------------------------------- fan-out claims


async def claim_fanout(db: AsyncDatabase[Doc], *, owner: str, lease_seconds: float) -> Doc | None:
    """Claim one evacuation whose fan-out is unfinished and unleased (or its lease lapsed)."""
    now = time.time()  # wall clock: a lease is about processes, not domain time
    return await db[WORKFLOWS].find_one_and_update(
        {
            "fanout.status": "pending",
            "$or": [{"fanout.lease": {"$exists": False}}, {"fanout.lease": {"$lt": now}}],
        },
        {"$set": {"fanout.lease": now + lease_seconds, "fanout.owner": owner}},
        return_document=ReturnDocument.AFTER,
    )


async def claim_fanout_of(
    db: AsyncDatabase[Doc], workflow_id: str, *, owner: str, lease_seconds: float
) -> Doc | None:
    now = time.time()
    return await db[WORKFLOWS].find_one_and_update(
        {
            "_id": workflow_id,
            "fanout.status": "pending",
            "$or": [
                {"fanout.lease": {"$exists": False}},
                {"fanout.lease": {"$lt": now}},
                {"fanout.owner": owner},
            ],
        },
        {"$set": {"fanout.lease": now + lease_seconds, "fanout.owner": owner}},
        return_document=ReturnDocument.AFTER,
    )


async def renew_fanout(db: AsyncDatabase[Doc], workflow_id: str, *, owner: str, lease_seconds: float) -> bool:
    r = await db[WORKFLOWS].update_one(
        {"_id": workflow_id, "fanout.owner": owner, "fanout.status": "pending"},
        {"$set": {"fanout.lease": time.time() + lease_seconds}},
    )
    return r.matched_count == 1


# ---------------------------------------------------------------- departures projection


def departure_doc(e: DepartureRecorded) -> Doc:
    """What repatriation keeps of a departure: enough to find and list workers abroad."""
    return {
        "_id": e.departure_id,
        "worker_id": e.worker_id,
        "version": e.version,
        "status": e.status.value,
        "full_name": e.full_name,
        "home_province": e.home_province,
        "home_regency": e.home_regency,
        "destination_country": e.destination_country.upper(),
        "sector": e.sector.value,
        "recorded_at": e.recorded_at,
    }


async def record_departures(db: AsyncDatabase[Doc], events: Iterable[DepartureRecorded]) -> int:
    """Store departure snapshots, keeping the highest version of each; returns how many changed.

    New departures go in with one bulk insert; those already known are replaced only by a
    higher version, each with one conditional write (`{_id, version < new}`), so redelivered or
    out-of-order events change nothing, whichever replica or consumer writes.
    """
    best: dict[str, Doc] = {}  # the highest version per departure within the batch itself
    for d in (departure_doc(e) for e in events):
        if d["_id"] not in best or d["version"] > best[d["_id"]]["version"]:
            best[d["_id"]] = d
    docs = list(best.values())
    changed = 0
    for i in range(0, len(docs), BATCH):
        chunk = docs[i : i + BATCH]
        inserted, there = await insert_new(db[DEPARTURES], chunk)
        changed += inserted
        for d in (chunk[i] for i in there):
            changed += await keep_newer(db[DEPARTURES], d)
    return changed


async def replay_departure(db: AsyncDatabase[Doc], e: DepartureRecorded) -> None:
    """One snapshot into the projection if newer than what is stored: safe beside a live consumer."""
    await keep_newer(db[DEPARTURES], departure_doc(e))


def abroad_query(countries: list[str]) -> Doc:
    return {"destination_country": {"$in": countries}, "status": {"$in": ABROAD}}


async def departures_abroad(db: AsyncDatabase[Doc], countries: list[str]) -> Any:
    """A cursor over every departure abroad in these countries."""
    return db[DEPARTURES].find(
        abroad_query(countries),
        {"worker_id": 1, "full_name": 1, "home_province": 1, "home_regency": 1, "destination_country": 1},
        batch_size=BATCH,
    )


# ---------------------------------------------------------------- evacuees


def evacuee_id(evacuation_id: str, worker_id: str) -> str:
    return f"{evacuation_id}:{worker_id}"


async def insert_evacuees(db: AsyncDatabase[Doc], docs: list[Doc]) -> int:
    """Bulk insert per-worker progress documents; those already there (a resumed fan-out) stay."""
    return (await insert_new(db[EVACUEES], docs))[0]


async def count_evacuees(db: AsyncDatabase[Doc], evacuation_id: str) -> int:
    return await db[EVACUEES].count_documents({"evacuation_id": evacuation_id})


async def progress(db: AsyncDatabase[Doc], match: Doc, by: list[str]) -> list[Doc]:
    """Counts of evacuees grouped by the given fields ($match and $group only)."""
    group_id: Any = {f: f"${f}" for f in by}
    cursor = await db[EVACUEES].aggregate(
        [{"$match": match}, {"$group": {"_id": group_id, "n": {"$sum": 1}}}]
    )
    return await cursor.to_list()


async def move_evacuees(
    db: AsyncDatabase[Doc],
    *,
    evacuation_id: str,
    worker_ids: list[str],
    before: list[str],
    set_: Doc,
    entry: Doc,
) -> int:
    """Move the named workers whose status is one of `before`; returns how many moved.

    One conditional update by _id per worker: the status check and the change are one atomic
    write, and _id is the filter FerretDB answers from its index (update_many would scan the
    whole collection).
    """
    moved = 0
    for worker_id in dict.fromkeys(worker_ids):
        r = await db[EVACUEES].update_one(
            {"_id": evacuee_id(evacuation_id, worker_id), "status": {"$in": before}},
            {"$set": set_, "$push": {"history": {"$each": [entry], "$slice": -50}}},
        )
        moved += r.modified_count
    return moved


async def note_evacuee(db: AsyncDatabase[Doc], evacuee: str, entry: Doc) -> bool:
    """Add a line to a person's history, once per incident (by _id)."""
    r = await db[EVACUEES].update_one(
        {"_id": evacuee, "history.incident_id": {"$ne": entry["incident_id"]}},
        {"$push": {"history": {"$each": [entry], "$slice": -50}}},
    )
    return r.modified_count == 1


async def remove_evacuee(db: AsyncDatabase[Doc], evacuee: str) -> None:
    """Drop a person's line (replaced by another under the matched worker's id; by _id)."""
    await db[EVACUEES].delete_one({"_id": evacuee})


async def get_evacuee(db: AsyncDatabase[Doc], evacuation_id: str, worker_id: str) -> Doc | None:
    return await db[EVACUEES].find_one({"_id": evacuee_id(evacuation_id, worker_id)})


async def list_evacuees(db: AsyncDatabase[Doc], query: Doc, *, limit: int, skip: int) -> list[Doc]:
    cursor = db[EVACUEES].find(query, {"history": 0}).sort("_id", 1).skip(skip).limit(limit)
    return await cursor.to_list()


async def evacuations_live_for(db: AsyncDatabase[Doc], worker_id: str) -> list[str]:
    """Evacuations in which this worker is tracked and not home yet."""
    docs = (
        await db[EVACUEES]
        .find({"worker_id": worker_id, "status": {"$ne": "home"}}, {"evacuation_id": 1})
        .to_list()
    )
    return [d["evacuation_id"] for d in docs]


async def record_case(db: AsyncDatabase[Doc], *, case_id: str, country: str, opened_at: Any) -> None:
    """Remember that a case exists (casework opened it); a redelivery changes nothing."""
    await db[CASES].update_one(
        {"_id": case_id}, {"$setOnInsert": {"country": country, "opened_at": opened_at}}, upsert=True
    )


async def note_case_worker(
    db: AsyncDatabase[Doc],
    *,
    case_id: str,
    worker_id: str | None,
    home_province: str | None,
    departure_id: str | None,
) -> None:
    """Keep whom a case is about once casework matched its worker (a late match)."""
    await db[CASES].update_one(
        {"_id": case_id},
        {"$set": {"worker_id": worker_id, "home_province": home_province, "departure_id": departure_id}},
        upsert=True,
    )


async def case_of(db: AsyncDatabase[Doc], case_id: str) -> Doc:
    return await db[CASES].find_one({"_id": case_id}) or {}


async def latest_departure(db: AsyncDatabase[Doc], worker_id: str) -> Doc | None:
    """The worker's departure recorded last (index: worker_id; a worker has a few)."""
    return await db[DEPARTURES].find_one(
        {"worker_id": worker_id}, sort=[("recorded_at", -1), ("version", -1)]
    )


async def case_known(db: AsyncDatabase[Doc], case_id: str) -> bool:
    return await db[CASES].find_one({"_id": case_id}, {"_id": 1}) is not None


async def someone_unaccounted(db: AsyncDatabase[Doc], evacuation_id: str, accounted: list[str]) -> bool:
    """Whether a worker of the evacuation is still not accounted for (index: evacuation_id, status)."""
    doc = await db[EVACUEES].find_one(
        {
            "evacuation_id": evacuation_id,
            "status": {"$nin": accounted},
            "confirmed_unaccounted": {"$ne": True},
        },
        {"_id": 1},
    )
    return doc is not None


async def live_evacuations_in(db: AsyncDatabase[Doc], country: str) -> list[str]:
    """Active evacuations covering a country (index: kind, status)."""
    docs = (
        await db[WORKFLOWS]
        .find(
            {
                "kind": "evacuation",
                "status": "active",
                "fanout.status": {"$in": ["pending", "done"]},
                "fanout.countries": country,
            },
            {"_id": 1},
        )
        .to_list()
    )
    return [d["_id"] for d in docs]
