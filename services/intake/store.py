"""intake's MongoDB: incidents, each carrying the events it caused until the relay sends them."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import HIDDEN, Doc

INCIDENTS = "incidents"


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[INCIDENTS].create_index([("mission_id", 1), ("reported_at", -1)])


async def insert(db: AsyncDatabase[Doc], doc: Doc) -> None:
    await db[INCIDENTS].insert_one(doc)


async def get(db: AsyncDatabase[Doc], incident_id: str) -> Doc | None:
    return await db[INCIDENTS].find_one({"_id": incident_id}, HIDDEN)
