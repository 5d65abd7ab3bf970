"""casework's MongoDB: one document a case, its timeline and outgoing events inside it."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import HIDDEN, Doc

CASES = "cases"


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    await db[CASES].create_index([("incident_ids", 1)])
    await db[CASES].create_index([("worker_key", 1), ("status", 1)])


async def insert_new(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Insert a case; False when a case with this id exists (the event was applied before)."""
    try:
        await db[CASES].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def get(db: AsyncDatabase[Doc], case_id: str) -> Doc | None:
    return await db[CASES].find_one({"_id": case_id}, HIDDEN)


async def find_by_incident(db: AsyncDatabase[Doc], incident_id: str) -> list[Doc]:
    cursor = db[CASES].find({"incident_ids": incident_id}, HIDDEN)
    return await cursor.to_list()
