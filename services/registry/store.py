"""registry's MongoDB: workers (identity, encrypted), departures (with their outbox), agencies, employers."""

from __future__ import annotations

from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import HIDDEN, Doc, applied_once, bulk_write_parts, insert_new, merge_updates
from shared.retention import ANONYMISED

WORKERS = "workers"
DEPARTURES = "departures"
AGENCIES = "agencies"
EMPLOYERS = "employers"
# Where ciphertexts rest, (collection, field path, kind): what `lindungi pii rotate` re-encrypts.
ENCRYPTED = [
    (WORKERS, "nik_enc", "nik"),
    (WORKERS, "passport_enc", "passport"),
    (WORKERS, "phone_enc", "phone"),
    (WORKERS, "next_of_kin.phone", "phone"),
]


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Indexes for lookups by keyed hash and for listing and statistics."""
    await db[WORKERS].create_index([("nik_hash", 1)])
    await db[WORKERS].create_index([("passport_hash", 1)])
    await db[DEPARTURES].create_index([("worker_id", 1)])
    await db[DEPARTURES].create_index([("home_province", 1), ("departure_date", 1)])
    await db[DEPARTURES].create_index([("destination_country", 1)])
    await db[DEPARTURES].create_index([("agency_id", 1)])
    # retention: departures that ended (returned, deceased) before a cutoff
    await db[DEPARTURES].create_index([("status", 1), ("returned_at", 1)])
    await db[DEPARTURES].create_index([("status", 1), ("deceased_at", 1)])


async def worker_by_hash(
    db: AsyncDatabase[Doc], *, nik_hash: str | None, passport_hash: str | None
) -> Doc | None:
    """The worker holding a NIK (first) or a passport number, by keyed hash."""
    for field, value in (("nik_hash", nik_hash), ("passport_hash", passport_hash)):
        if value:
            doc = await db[WORKERS].find_one({field: value})
            if doc is not None:
                return doc
    return None


async def workers_by_hashes(db: AsyncDatabase[Doc], field: str, values: list[str]) -> list[Doc]:
    """The workers holding any of these keyed hashes in `field` (nik_hash or passport_hash, both
    indexed): one query for a chunk of an import."""
    if not values:
        return []
    return (
        await db[WORKERS]
        .find({field: {"$in": values}}, {"_id": 1, "nik_hash": 1, "passport_hash": 1})
        .to_list()
    )


def _worker_upsert(worker_id: str, fields: Doc, created_at: Any) -> tuple[Doc, Doc]:
    """The filter and update (with upsert) that create a worker or refresh their fields."""
    return {"_id": worker_id}, {"$set": fields, "$setOnInsert": {"created_at": created_at}}


async def upsert_worker(db: AsyncDatabase[Doc], worker_id: str, fields: Doc, created_at: Any) -> None:
    """Create the worker or refresh their identity and contact fields (idempotent, no events)."""
    await db[WORKERS].update_one(*_worker_upsert(worker_id, fields, created_at), upsert=True)


async def upsert_workers(db: AsyncDatabase[Doc], workers: list[tuple[str, Doc, Any]]) -> set[int]:
    """upsert_worker for many distinct workers, (id, fields, created_at), in one unordered bulk
    write; the positions whose upsert met a duplicate key (another writer inserted the worker
    meanwhile: not written, to be done again one by one)."""
    if not workers:
        return set()
    ops = [UpdateOne(*_worker_upsert(*worker), upsert=True) for worker in workers]
    return await bulk_write_parts(db[WORKERS], ops)


async def get_worker(db: AsyncDatabase[Doc], worker_id: str) -> Doc | None:
    return await db[WORKERS].find_one({"_id": worker_id})


async def get_departure(db: AsyncDatabase[Doc], departure_id: str) -> Doc | None:
    return await db[DEPARTURES].find_one({"_id": departure_id}, HIDDEN)


async def departures_by_ids(db: AsyncDatabase[Doc], departure_ids: list[str]) -> dict[str, Doc]:
    """The departures of these ids that exist, by id (one `_id $in` query for a chunk of an import)."""
    if not departure_ids:
        return {}
    found = await db[DEPARTURES].find({"_id": {"$in": departure_ids}}, HIDDEN).to_list()
    return {doc["_id"]: doc for doc in found}


async def departures_of(db: AsyncDatabase[Doc], worker_id: str) -> list[Doc]:
    return await db[DEPARTURES].find({"worker_id": worker_id}, HIDDEN).sort("departure_date", 1).to_list()


async def insert_departure(db: AsyncDatabase[Doc], doc: Doc) -> bool:
    """Insert a new departure; False when one with this id exists already."""
    try:
        await db[DEPARTURES].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def insert_departures(db: AsyncDatabase[Doc], docs: list[Doc]) -> set[int]:
    """Insert new departures in one unordered write; the positions of those that exist already."""
    _, existing = await insert_new(db[DEPARTURES], docs)
    return set(existing)


async def update_departure(db: AsyncDatabase[Doc], departure_id: str, version: int, update: Doc) -> bool:
    """Apply an update if the departure is still at `version` (optimistic: no lost updates)."""
    result = await db[DEPARTURES].update_one({"_id": departure_id, "version": version}, update)
    return result.matched_count == 1


async def ended_before(db: AsyncDatabase[Doc], status: str, cutoff: Any, limit: int) -> list[Doc]:
    """Departures in an ended status (returned, deceased) since before `cutoff`, not yet anonymised."""
    query = {"status": status, f"{status}_at": {"$lte": cutoff}, "anonymised_at": None}
    return await db[DEPARTURES].find(query, HIDDEN).limit(limit).to_list()


async def strip_worker(db: AsyncDatabase[Doc], worker_id: str, fields: tuple[str, ...], now: Any) -> bool:
    """Remove a worker's identifying fields (once); False when done before or unknown."""
    result = await db[WORKERS].update_one(
        {"_id": worker_id, "anonymised_at": None},
        {
            "$unset": dict.fromkeys(fields, ""),
            "$set": {"full_name": ANONYMISED, "date_of_birth": None, "name_dob_hash": None,
                     "home_regency": None, "anonymised_at": now},
        },
    )  # fmt: skip
    return result.modified_count == 1


async def list_departures(db: AsyncDatabase[Doc], query: Doc, *, limit: int, skip: int) -> list[Doc]:
    cursor = (
        db[DEPARTURES].find(query, HIDDEN).sort([("departure_date", -1), ("_id", 1)]).skip(skip).limit(limit)
    )
    return await cursor.to_list()


async def aggregate(db: AsyncDatabase[Doc], pipeline: list[Doc]) -> list[Doc]:
    return await (await db[DEPARTURES].aggregate(pipeline)).to_list()


def _party_stub(party_id: str, on_insert: Doc) -> tuple[Doc, Doc]:
    """The filter and update (with upsert) that create an agency or employer stub once."""
    return {"_id": party_id}, {
        "$setOnInsert": {"flagged": False, "flags": [], "cases_opened": 0, **on_insert}
    }


async def ensure_party(db: AsyncDatabase[Doc], collection: str, party_id: str, on_insert: Doc) -> None:
    """Create an agency or employer stub the first time a departure or a flag names it."""
    await db[collection].update_one(*_party_stub(party_id, on_insert), upsert=True)


async def ensure_parties(db: AsyncDatabase[Doc], collection: str, parties: dict[str, Doc]) -> None:
    """ensure_party for many agencies or employers, {id: fields a new record gets}, in a few bulk
    commands. A duplicate key (another writer created one meanwhile) leaves the record as that
    writer made it."""
    if not parties:
        return
    ops = [
        UpdateOne(*_party_stub(party_id, on_insert), upsert=True) for party_id, on_insert in parties.items()
    ]
    await bulk_write_parts(db[collection], ops)


async def put_party(db: AsyncDatabase[Doc], collection: str, party_id: str, fields: Doc) -> Doc | None:
    await db[collection].update_one(
        {"_id": party_id},
        {"$set": fields, "$setOnInsert": {"flagged": False, "flags": [], "cases_opened": 0}},
        upsert=True,
    )
    return await get_party(db, collection, party_id)


async def get_party(db: AsyncDatabase[Doc], collection: str, party_id: str) -> Doc | None:
    return await db[collection].find_one({"_id": party_id}, HIDDEN)


async def list_parties(db: AsyncDatabase[Doc], collection: str, query: Doc, limit: int) -> list[Doc]:
    return await db[collection].find(query, HIDDEN).sort("_id", 1).limit(limit).to_list()


async def apply_once(db: AsyncDatabase[Doc], collection: str, party_id: str, key: str, update: Doc) -> bool:
    """Apply an update to an agency/employer once per key; creates the record if it is unknown."""
    cond, mark = applied_once(key)
    full = merge_updates(update, mark)
    try:
        result = await db[collection].update_one({"_id": party_id, **cond}, full, upsert=True)
    except DuplicateKeyError:
        return False  # exists and has this key already: the upsert tried to insert a twin
    return result.modified_count == 1 or result.upserted_id is not None


async def case_left_open(db: AsyncDatabase[Doc], agency_id: str, case_id: str) -> bool:
    """Take a case out of an agency's open cases and count the closure, only if it was open
    (so a redelivered or a second closing event counts nothing)."""
    result = await db[AGENCIES].update_one(
        {"_id": agency_id, "open_cases": case_id},
        {"$pull": {"open_cases": case_id}, "$inc": {"cases_closed": 1}},
    )
    return result.modified_count == 1


async def case_reopened(db: AsyncDatabase[Doc], agency_id: str, case_id: str) -> bool:
    """Put a reopened case back among an agency's open cases (the closure it had stays counted)."""
    result = await db[AGENCIES].update_one({"_id": agency_id}, {"$addToSet": {"open_cases": case_id}})
    return result.modified_count == 1
