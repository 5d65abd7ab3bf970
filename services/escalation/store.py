"""escalation's MongoDB: rule sets, live and closed chains (timers), counters, firings.

Notifications and their deliveries are kept by notification_store.py.

Every write that decides something is a single-document operation addressed by `_id` (an
insert with a unique id, or an update with `$max`/`$addToSet`); the one with a condition beside
`_id` is a subject's link (`link_subject`: only while the rule's latest chain is the one read).
Besides being atomic, this mattered on FerretDB 1.24 as built: a write whose filter held more
than `_id` scanned the whole collection (0.4 s per update at 20,000 timers, against 0.04 s by
`_id` alone); the local build pushes `_id` down whatever the other keys (deploy/local/infra.sh).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.escalation import notification_store
from shared.mongo import HIDDEN, Doc, bulk_write_parts, insert_new
from shared.outbox import Outbox

RULESETS = "rulesets"
CHAINS = "chains"  # live chains only: one pending timer each (its next slot and due time)
CLOSED = "chains_closed"  # chains that finished, were cancelled or superseded
DECIDED = "decided"  # one record per slot / trigger / window, forever: the single-assignment fence
EMISSIONS = "emissions"  # the events of a decision, in the outbox until published, then deleted
COUNTERS = "counters"
COUNT_HEADS = "count_heads"  # per counting rule and key: its last firing number, its latest windows
SUBJECTS = "subjects"  # per subject: its live chain ids, and the latest chain of each rule


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[CHAINS].create_index([("due_at", 1)])
    await db[CHAINS].create_index([("subject", 1)])
    await db[CLOSED].create_index([("subject", 1)])
    await db[DECIDED].create_index([("chain_id", 1)])
    await db[DECIDED].create_index([("kind", 1)])  # the counter rebuild reads the window decisions
    # The repair reads the few decisions never marked emitted: without this it read every decision
    # of the year at each pass, on MongoDB as on FerretDB.
    await db[DECIDED].create_index([("emitted", 1), ("decided_wall", 1)])
    await notification_store.ensure_indexes(db)


# ---------------------------------------------------------------- rule sets


async def latest_ruleset(db: AsyncDatabase[Doc]) -> Doc | None:
    """The rule set in force: the highest version."""
    return await db[RULESETS].find_one({}, sort=[("_id", DESCENDING)])


async def ruleset(db: AsyncDatabase[Doc], version: int) -> Doc | None:
    return await db[RULESETS].find_one({"_id": version})


async def every_ruleset(db: AsyncDatabase[Doc]) -> list[Doc]:
    """Every stored rule set (version, text, load time), oldest first: the history of the rules."""
    return await db[RULESETS].find({}, {"yaml": 1, "loaded_at": 1}).sort("_id", 1).to_list()


async def list_rulesets(db: AsyncDatabase[Doc]) -> list[Doc]:
    cursor = db[RULESETS].find({}, {"yaml": 0, "rules": 0}).sort("_id", DESCENDING)
    return await cursor.to_list()


async def add_ruleset(db: AsyncDatabase[Doc], doc: Doc, *, first_only: bool = False) -> int | None:
    """Store a rule set as the next version (the unique _id settles races).

    With first_only, store nothing (None) if any rule set exists.
    """
    for _ in range(20):
        latest = await latest_ruleset(db)
        if first_only and latest is not None:
            return None
        version = (latest["_id"] if latest else 0) + 1
        try:
            await db[RULESETS].insert_one({**doc, "_id": version})
            return version
        except DuplicateKeyError:
            continue
    raise RuntimeError("could not store the rule set: too many concurrent loads")


# ---------------------------------------------------------------- chains


async def insert_chain(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Start a chain; False if it is live already."""
    try:
        await db[CHAINS].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def insert_chains(db: AsyncDatabase[Doc], docs: list[Doc]) -> None:
    """Bulk-start chains (bench and tests: many timers at once)."""
    for i in range(0, len(docs), 5000):
        await db[CHAINS].insert_many(docs[i : i + 5000], ordered=False)


class Unchecked:
    """link_subject's `expect` when the link is made whatever the rule's latest chain is."""


UNCHECKED = Unchecked()


async def link_subject(
    db: AsyncDatabase[Doc],
    subject: str,
    rule_id: str,
    chain_id: str,
    *,
    expect: str | Unchecked | None = UNCHECKED,
) -> tuple[str | None, bool] | None:
    """Note a chain under its subject as the rule's latest.

    Returns the chain of the same rule it replaces (if any) and whether this one was noted before.
    With `expect`, only while the rule's latest chain for the subject is still `expect` (None: no
    chain yet), what the caller read and decided on: None when another trigger linked meanwhile
    (two cases of one worker handled side by side, or by two replicas), to read again and decide
    again.
    """
    field = f"latest.{rule_id}"
    query: Doc = {"_id": subject}
    if not isinstance(expect, Unchecked):
        query[field] = {"$exists": False} if expect is None else expect
    try:
        before = await db[SUBJECTS].find_one_and_update(
            query,
            {"$addToSet": {"chains": chain_id}, "$set": {field: chain_id}},
            upsert=not isinstance(expect, str),  # a subject seen first is made here
            return_document=ReturnDocument.BEFORE,
        )
    except DuplicateKeyError:
        return None  # the subject's document is there, with a latest chain of the rule: it moved
    if before is None and isinstance(expect, str):
        return None  # the latest chain is another one now
    previous = ((before or {}).get("latest") or {}).get(rule_id)
    if previous == chain_id:
        return None, True
    return previous, False


async def unlink_subject(db: AsyncDatabase[Doc], subject: str, chain_id: str) -> None:
    await db[SUBJECTS].update_one({"_id": subject}, {"$pullAll": {"chains": [chain_id]}})


async def live_chain(db: AsyncDatabase[Doc], chain_id: str) -> Doc | None:
    return await db[CHAINS].find_one({"_id": chain_id})


async def live_chains(db: AsyncDatabase[Doc], chain_ids: list[str]) -> dict[str, Doc]:
    """The live chains among these ids, in one read by `_id`."""
    return {d["_id"]: d async for d in db[CHAINS].find({"_id": {"$in": chain_ids}})}


async def subject_docs(db: AsyncDatabase[Doc], subjects: list[str]) -> dict[str, Doc | None]:
    """Each subject's document (its live chain ids, the latest chain of each rule; None: it has
    none yet), in one read by `_id`."""
    found = {d["_id"]: d async for d in db[SUBJECTS].find({"_id": {"$in": subjects}})} if subjects else {}
    return {subject: found.get(subject) for subject in subjects}


def latest_of(subject: Doc | None, rule_id: str) -> str | None:
    """The chain a rule last started for a subject (live or ended), from its subject document."""
    return ((subject or {}).get("latest") or {}).get(rule_id)


async def live_for_subjects(db: AsyncDatabase[Doc], subjects: dict[str, Doc | None]) -> list[Doc]:
    """The live chains of subjects (their documents, from subject_docs), in one read by `_id`."""
    ids = list(dict.fromkeys(c for doc in subjects.values() for c in (doc or {}).get("chains", [])))
    return list((await live_chains(db, ids)).values()) if ids else []


async def due(db: AsyncDatabase[Doc], now: datetime, limit: int) -> list[Doc]:
    """Live chains whose next slot is due (a read: claiming is the firing record's insert)."""
    return await db[CHAINS].find({"due_at": {"$lte": now}}).limit(limit).to_list()


async def pending_timers(db: AsyncDatabase[Doc]) -> tuple[int, datetime | None]:
    """How many live chains wait on a timer, and the earliest due time."""
    pending = await db[CHAINS].count_documents({})
    first = await db[CHAINS].find({}, {"due_at": 1}).sort("due_at", 1).limit(1).to_list()
    return pending, (first[0]["due_at"] if first else None)


async def advance(db: AsyncDatabase[Doc], chain_id: str, slot: int, due_at: datetime) -> None:
    """Move a chain to a later slot; $max makes a stale or repeated advance harmless."""
    await db[CHAINS].update_one({"_id": chain_id}, {"$max": {"slot": slot, "due_at": due_at}})


async def advance_many(db: AsyncDatabase[Doc], moves: list[tuple[str, int, datetime]]) -> None:
    """`advance` for several chains in one write (each by `_id`, each with `$max`)."""
    if moves:
        ops = [UpdateOne({"_id": c}, {"$max": {"slot": slot, "due_at": at}}) for c, slot, at in moves]
        await bulk_write_parts(db[CHAINS], ops)


async def close(db: AsyncDatabase[Doc], chain: Doc, *, state: str, at: datetime, by: str) -> None:
    """Move a chain out of the live set (first closer wins the recorded state)."""
    closed = {k: v for k, v in chain.items() if not k.startswith("_") or k == "_id"}
    closed.update({"state": state, "closed_at": at, "closed_by": by})
    try:
        await db[CLOSED].insert_one(closed)
    except DuplicateKeyError:
        pass
    await db[CHAINS].delete_one({"_id": chain["_id"]})
    await unlink_subject(db, chain["subject"], chain["_id"])


async def insert_closed(db: AsyncDatabase[Doc], doc: Doc) -> None:
    """Record a chain that never ran (an older trigger than the rule's latest for its subject)."""
    try:
        await db[CLOSED].insert_one(doc)
    except DuplicateKeyError:
        pass


async def get_chain(db: AsyncDatabase[Doc], chain_id: str) -> Doc | None:
    doc = await db[CHAINS].find_one({"_id": chain_id}, HIDDEN)
    return doc or await db[CLOSED].find_one({"_id": chain_id}, HIDDEN)


async def find_chains(db: AsyncDatabase[Doc], *, subject: str | None, limit: int) -> list[Doc]:
    query: Doc = {"subject": subject} if subject else {}
    live = await db[CHAINS].find(query, HIDDEN).limit(limit).to_list()
    closed = await db[CLOSED].find(query, HIDDEN).limit(limit).to_list()
    # a chain that closed between the two reads is in both: its closed record wins, listed once
    by_id = {c["_id"]: c for c in live}
    by_id.update({c["_id"]: c for c in closed})
    return list(by_id.values())[:limit]


# ---------------------------------------------------------------- firings and counters


async def decide(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Record a decision; False if this slot/trigger/window was decided before (by anyone)."""
    try:
        await db[DECIDED].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def decide_many(db: AsyncDatabase[Doc], docs: list[Doc]) -> list[bool]:
    """Record several decisions in one write; for each, False if it was decided before (by anyone).
    Each document is its own insert: one refused leaves the others recorded."""
    _, before = await insert_new(db[DECIDED], docs)
    refused = set(before)
    return [i not in refused for i in range(len(docs))]


async def emit_batch(db: AsyncDatabase[Doc], decisions: list[tuple[str, list[Doc]]]) -> str | None:
    """Put decisions' events in the outbox in one document, then mark those decisions emitted;
    the outbox document's `_id` (None: no events), for the relay's wake."""
    entries = [e for _, events in decisions for e in events]
    ids = [d for d, _ in decisions]
    emission = uuid.uuid4().hex if entries else None
    if entries:
        await db[EMISSIONS].insert_one(Outbox.on_insert({"_id": emission, "decisions": ids}, entries))
    if len(ids) == 1:
        await db[DECIDED].update_one({"_id": ids[0]}, {"$set": {"emitted": True}})
    elif ids:
        await db[DECIDED].update_many({"_id": {"$in": ids}}, {"$set": {"emitted": True}})
    return emission


async def unemitted(db: AsyncDatabase[Doc], decided_before: float, limit: int = 200) -> list[Doc]:
    """Decisions never marked emitted (firings and withdrawals: those that carry events), decided
    before a wall-clock time."""
    return await db[DECIDED].find(unemitted_query(decided_before)).limit(limit).to_list()


def unemitted_query(decided_before: float) -> Doc:
    """Served by the index on (emitted, decided_wall): almost every decision is emitted, and those
    without events (cancelled slots, windows) have no `emitted` at all."""
    return {"emitted": False, "decided_wall": {"$lt": decided_before}}


async def purge_published(db: AsyncDatabase[Doc]) -> int:
    """Delete emissions the relay has published, so its scans stay small (FerretDB scans)."""
    result = await db[EMISSIONS].delete_many({"_outbox_pending": False})
    return result.deleted_count


async def insert_cancellations(db: AsyncDatabase[Doc], docs: list[Doc]) -> int:
    """Decide the remaining slots of a chain as cancelled; slots already fired keep their record."""
    return (await insert_new(db[DECIDED], docs))[0]


async def get_decision(db: AsyncDatabase[Doc], decision_id: str) -> Doc | None:
    return await db[DECIDED].find_one({"_id": decision_id})


async def get_decisions(db: AsyncDatabase[Doc], decision_ids: list[str]) -> dict[str, Doc]:
    if not decision_ids:
        return {}
    return {d["_id"]: d async for d in db[DECIDED].find({"_id": {"$in": decision_ids}})}


async def decisions_of(db: AsyncDatabase[Doc], chain_id: str) -> list[Doc]:
    return await db[DECIDED].find({"chain_id": chain_id}, HIDDEN).to_list()


async def count_member(db: AsyncDatabase[Doc], counter_id: str, member: Doc, init: Doc) -> Doc:
    """Add a member ({id, at}) to a counter bucket (made on first use); a redelivery counts once."""
    for attempt in range(3):
        try:
            doc = await db[COUNTERS].find_one_and_update(
                {"_id": counter_id},
                {"$addToSet": {"members": member}, "$setOnInsert": init},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            assert doc is not None
            return doc
        except DuplicateKeyError:
            if attempt == 2:
                raise  # two replicas upserted the same new counter; the retry finds it
    raise AssertionError("unreachable")


async def counters_by_id(db: AsyncDatabase[Doc], ids: list[str]) -> list[Doc]:
    """Counter buckets by `_id` (those that exist)."""
    out = []
    for counter_id in ids:
        doc = await db[COUNTERS].find_one({"_id": counter_id})
        if doc is not None:
            out.append(doc)
    return out


HEAD_WINDOWS = 50  # windows a head keeps (older ones' members are marked counted in their buckets)


async def count_head(db: AsyncDatabase[Doc], head_id: str) -> Doc:
    """A counting rule and key's last firing number and latest windows ({} before the first)."""
    return await db[COUNT_HEADS].find_one({"_id": head_id}) or {}


async def advance_count_head(
    db: AsyncDatabase[Doc], head_id: str, seq: int, members: list[str], init: Doc
) -> None:
    """Note firing number `seq` and its members (made on first use; by _id)."""
    update = {
        "$max": {"seq": seq},
        "$push": {"windows": {"$each": [{"seq": seq, "members": members}], "$slice": -HEAD_WINDOWS}},
        "$setOnInsert": init,
    }
    for attempt in range(3):
        try:
            await db[COUNT_HEADS].update_one({"_id": head_id}, update, upsert=True)
            return
        except DuplicateKeyError:
            if attempt == 2:
                raise  # two replicas upserted the same new head; the retry finds it


async def mark_counted(db: AsyncDatabase[Doc], members_by_bucket: dict[str, list[str]]) -> None:
    """Note members as counted by a firing, in the bucket that holds each."""
    for bucket_id, members in members_by_bucket.items():
        await db[COUNTERS].update_one({"_id": bucket_id}, {"$addToSet": {"counted": {"$each": members}}})


async def window_decisions(db: AsyncDatabase[Doc]) -> list[Doc]:
    """Every firing of a counting rule: its rule, key and the members it counted."""
    cursor = db[DECIDED].find({"kind": "window"}, {"rule_id": 1, "key": 1, "members": 1})
    return await cursor.to_list()


async def counters(db: AsyncDatabase[Doc], limit: int = 100) -> list[Any]:
    return await db[COUNTERS].find({}).limit(limit).to_list()
