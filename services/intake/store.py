"""intake's MongoDB: incidents (each carrying its events until the relay sends them) and the
projection of registry's departures used for matching."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import HIDDEN, Doc

INCIDENTS = "incidents"
DEPARTURES = "departures"


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Unique dedup keys (every incident has both: its own id when the mission gave none)."""
    await db[INCIDENTS].create_index([("mission_id", 1), ("reported_at", -1)])
    await db[INCIDENTS].create_index([("country", 1), ("reported_at", -1)])
    await db[INCIDENTS].create_index([("ref_key", 1)], unique=True)
    await db[INCIDENTS].create_index([("idem_key", 1)], unique=True)
    await db[INCIDENTS].create_index([("worker_key", 1), ("category", 1), ("occurred_at", 1)])
    for field in ("worker_id", "nik_hash", "passport_hash", "date_of_birth"):
        await db[DEPARTURES].create_index([(field, 1)])


async def insert(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Insert an incident; False if its id or a dedup key is taken (a repeat)."""
    try:
        await db[INCIDENTS].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def get(db: AsyncDatabase[Doc], incident_id: str) -> Doc | None:
    return await db[INCIDENTS].find_one({"_id": incident_id}, HIDDEN)


async def find_repeat(
    db: AsyncDatabase[Doc], *, incident_id: str, ref_key: str | None, idem_key: str | None
) -> Doc | None:
    """The incident a repeated report refers to, by id or dedup key."""
    ors: list[Doc] = [{"_id": incident_id}]
    if ref_key:
        ors.append({"ref_key": ref_key})
    if idem_key:
        ors.append({"idem_key": idem_key})
    return await db[INCIDENTS].find_one({"$or": ors}, HIDDEN)


async def related(
    db: AsyncDatabase[Doc],
    *,
    worker_key: str,
    category: str,
    window: tuple[datetime, datetime],
    limit: int = 20,
) -> list[str]:
    """Ids of incidents about the same worker and category within the window."""
    cursor = (
        db[INCIDENTS]
        .find(
            {
                "worker_key": worker_key,
                "category": category,
                "occurred_at": {"$gte": window[0], "$lte": window[1]},
            },
            {"_id": 1},
        )
        .limit(limit)
    )
    return [d["_id"] for d in await cursor.to_list()]


async def link_back(db: AsyncDatabase[Doc], incident_ids: list[str], new_id: str) -> None:
    """Let earlier incidents know of a later report of the same worker and event."""
    if incident_ids:
        await db[INCIDENTS].update_many(
            {"_id": {"$in": incident_ids}}, {"$addToSet": {"linked_incident_ids": new_id}}
        )


async def list_incidents(db: AsyncDatabase[Doc], query: Doc, *, limit: int, skip: int) -> list[Doc]:
    cursor = db[INCIDENTS].find(query, HIDDEN).sort([("reported_at", -1), ("_id", 1)]).skip(skip).limit(limit)
    return await cursor.to_list()


async def candidates(
    db: AsyncDatabase[Doc],
    *,
    worker_id: str | None,
    nik_hash: str | None,
    passport_hash: str | None,
    date_of_birth: str | None,
) -> list[Doc]:
    """Departures that might be the reported worker's: same id, NIK, passport or date of birth."""
    ors: list[Doc] = []
    for field, value in (
        ("worker_id", worker_id),
        ("nik_hash", nik_hash),
        ("passport_hash", passport_hash),
        ("date_of_birth", date_of_birth),
    ):
        if value:
            ors.append({field: value})
    if not ors:
        return []
    return await db[DEPARTURES].find({"$or": ors}).limit(500).to_list()


async def project_departure(
    db: AsyncDatabase[Doc], departure_id: str, version: int, fields: dict[str, Any]
) -> bool:
    """Keep the highest version of a departure; an older or repeated snapshot changes nothing."""
    try:
        result = await db[DEPARTURES].update_one(
            {"_id": departure_id, "version": {"$lt": version}},
            {"$set": {**fields, "version": version}},
            upsert=True,
        )
    except DuplicateKeyError:
        return False  # we hold this version or a newer one
    return result.modified_count == 1 or result.upserted_id is not None
