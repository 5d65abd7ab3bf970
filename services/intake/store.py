"""intake's MongoDB: incidents (each carrying its events until the relay sends them) and the
projection of registry's departures used for matching."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from shared.mongo import HIDDEN, Doc
from shared.paging import Order
from shared.projection import keep_newer

INCIDENTS = "incidents"
DEPARTURES = "departures"
# Lookups by _id only: FerretDB (SQLite) answers those from its primary key, while any other
# filter reads the whole collection. So the hot path keeps small side documents keyed by what
# it looks up: dedup claims, link groups, and the projection's identifier index.
CLAIMS = "dedup_claims"
LINKS = "link_groups"
DEPARTURE_KEYS = "departure_keys"
UNMATCHED = "unmatched_keys"  # identifier key -> incidents accepted unmatched (late matching)
# Where ciphertexts rest, (collection, field path, kind): what `lindungi pii rotate` re-encrypts.
ENCRYPTED = [
    (INCIDENTS, "worker.nik_enc", "nik"),
    (INCIDENTS, "worker.passport_enc", "passport"),
    (INCIDENTS, "worker.phone_enc", "phone"),
]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Indexes for listing; the hot path needs none (it reads by _id)."""
    # a mission's list and a country's, in list order (LIST_ORDER, `_id` last): a page is a walk of
    # the index from the newest, on MongoDB as on the local FerretDB (docs/performance.md)
    await db[INCIDENTS].create_index([("mission_id", 1), ("reported_at", -1), ("_id", 1)])
    await db[INCIDENTS].create_index([("country", 1), ("reported_at", -1), ("_id", 1)])
    await db[INCIDENTS].create_index([("reported_at", -1), ("_id", 1)])  # the desk's list, unfiltered
    held = await db[INCIDENTS].index_information()
    for retired in ("mission_id_1_reported_at_-1", "country_1_reported_at_-1"):  # the two above, before `_id`
        if retired in held:
            with contextlib.suppress(OperationFailure):  # another replica dropped it first
                await db[INCIDENTS].drop_index(retired)
    # a worker's own record (`lindungi pii export`): their incidents by NIK hash or registry match
    await db[INCIDENTS].create_index([("worker.nik_hash", 1)])
    await db[INCIDENTS].create_index([("match.worker_id", 1)])


async def insert(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Insert an incident; False if one with this id exists (a repeat)."""
    try:
        await db[INCIDENTS].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def get(db: AsyncDatabase[Doc], incident_id: str) -> Doc | None:
    return await db[INCIDENTS].find_one({"_id": incident_id}, HIDDEN)


async def claimed(db: AsyncDatabase[Doc], key: str) -> str | None:
    """The incident id a dedup key (mission reference, idempotency key) belongs to, if any."""
    doc = await db[CLAIMS].find_one({"_id": key})
    return doc["incident_id"] if doc else None


async def claim(db: AsyncDatabase[Doc], key: str, incident_id: str) -> str:
    """Claim a dedup key for an incident; returns the incident id that holds it (maybe another)."""
    try:
        await db[CLAIMS].insert_one({"_id": key, "incident_id": incident_id})
    except DuplicateKeyError:
        return await claimed(db, key) or incident_id
    return incident_id


async def link_group(db: AsyncDatabase[Doc], group: str) -> list[Doc]:
    """Earlier incidents of one worker and category: [{incident_id, occurred_at}]."""
    doc = await db[LINKS].find_one({"_id": group})
    return list(doc["items"]) if doc else []


async def join_link_group(
    db: AsyncDatabase[Doc], group: str, incident_id: str, occurred_at: datetime
) -> list[Doc]:
    """Join a link group and return who was in it before, in one atomic write.

    Two first reports of one worker at one instant (two replicas) cannot both see an empty group:
    one joins first, the other reads it. A retry of the same report may push it twice; readers
    skip their own id. Filtered by _id alone (see above).
    """
    item = {"incident_id": incident_id, "occurred_at": occurred_at}
    for _ in range(5):
        try:
            before = await db[LINKS].find_one_and_update(
                {"_id": group},
                {"$push": {"items": {"$each": [item], "$slice": -100}}},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:
            continue  # another report created the group at this instant: push into it
        return list((before or {}).get("items", []))
    raise RuntimeError("could not join a link group")


async def joined_after(db: AsyncDatabase[Doc], group: str, incident_id: str) -> list[Doc]:
    """Members that joined after the incident (they may have linked back before it was stored)."""
    items = await link_group(db, group)
    mine = [n for n, i in enumerate(items) if i["incident_id"] == incident_id]
    return items[mine[0] + 1 :] if mine else []


async def add_links(db: AsyncDatabase[Doc], incident_id: str, others: list[str], *, field: str) -> None:
    """Link an incident forward to later reports of the same worker and event."""
    if others:
        await db[INCIDENTS].update_one({"_id": incident_id}, {"$addToSet": {field: {"$each": others}}})


async def link_back(
    db: AsyncDatabase[Doc], incident_ids: list[str], new_id: str, *, field: str = "linked_incident_ids"
) -> None:
    """Let earlier incidents know of a later report of the same worker and event (or a suggestion)."""
    for incident_id in incident_ids:
        await db[INCIDENTS].update_one({"_id": incident_id}, {"$addToSet": {field: new_id}})


async def anonymise(db: AsyncDatabase[Doc], incident_id: str, fields: Doc) -> bool:
    """Replace an incident's personal fields (once; by _id); False when done before or unknown."""
    result = await db[INCIDENTS].update_one({"_id": incident_id, "anonymised_at": None}, {"$set": fields})
    return result.modified_count == 1


# The order of incident lists, newest report first; its cursor pages them.
LIST_ORDER = Order(("reported_at", -1), ("_id", 1))


async def list_incidents(
    db: AsyncDatabase[Doc], query: Doc, *, limit: int, after: str | None, now: datetime | None = None
) -> list[Doc]:
    """Incidents newest report first, a window of time back from `now` at a time (Order.read)."""
    return await LIST_ORDER.read(db[INCIDENTS], query, limit=limit, after=after, projection=HIDDEN, now=now)


async def candidates(db: AsyncDatabase[Doc], keys: list[str], limit: int = 200) -> list[Doc]:
    """Departures filed under any of the keys ('nik:<hash>', 'passport:<hash>', 'dob:<date>'...)."""
    # Two reads by `_id`, whatever the number of keys and departures (a date of birth files a few
    # dozen departures at a national year); the departures in the order their keys name them.
    filed = (
        {d["_id"]: d for d in await db[DEPARTURE_KEYS].find({"_id": {"$in": keys}}).to_list()} if keys else {}
    )
    ids: list[str] = []
    for key in keys:
        for departure_id in filed.get(key, {}).get("departure_ids", []):
            if departure_id not in ids:
                ids.append(departure_id)
    ids = ids[:limit]
    if not ids:
        return []
    by_id = {d["_id"]: d for d in await db[DEPARTURES].find({"_id": {"$in": ids}}).to_list()}
    return [by_id[i] for i in ids if i in by_id]


async def project_departure(
    db: AsyncDatabase[Doc], departure_id: str, version: int, fields: dict[str, Any], keys: list[str]
) -> bool:
    """Keep the highest version of a departure and file it under its keys; older snapshots change nothing.

    Keys are filed first: a key left from an older version only adds a candidate, which the
    matcher checks against the departure's current fields.
    """
    for key in keys:
        await db[DEPARTURE_KEYS].update_one(
            {"_id": key}, {"$addToSet": {"departure_ids": departure_id}}, upsert=True
        )
    return await keep_newer(db[DEPARTURES], {"_id": departure_id, **fields, "version": version})


async def wait_for_departure(db: AsyncDatabase[Doc], keys: list[str], incident_id: str) -> None:
    """File an unmatched incident under its worker's identifier keys, for a departure to find later."""
    for key in keys:
        await db[UNMATCHED].update_one(
            {"_id": key}, {"$addToSet": {"incident_ids": incident_id}}, upsert=True
        )


async def waiting(db: AsyncDatabase[Doc], keys: list[str]) -> list[str]:
    """Unmatched incidents filed under any of the keys."""
    ids: list[str] = []
    for key in keys:
        doc = await db[UNMATCHED].find_one({"_id": key})
        ids.extend(i for i in (doc or {}).get("incident_ids", []) if i not in ids)
    return ids


async def done_waiting(db: AsyncDatabase[Doc], keys: list[str], incident_id: str) -> None:
    for key in keys:
        await db[UNMATCHED].update_one({"_id": key}, {"$pull": {"incident_ids": incident_id}})


async def set_match(db: AsyncDatabase[Doc], incident_id: str, update: Doc) -> bool:
    """Record a late match, once: only while the incident is still unmatched."""
    result = await db[INCIDENTS].update_one({"_id": incident_id, "match.worker_id": None}, update)
    return result.modified_count == 1
