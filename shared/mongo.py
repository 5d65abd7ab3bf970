"""MongoDB access through PyMongo's async API (AsyncMongoClient, Motor's official successor)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pymongo import AsyncMongoClient, DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from shared.settings import Settings

Doc = dict[str, Any]

# Bookkeeping fields (outbox, idempotency) that no API answer shows.
HIDDEN: Doc = {"_outbox": 0, "_outbox_pending": 0, "_outbox_owner": 0, "_outbox_lease": 0, "_applied": 0}


def connect(settings: Settings) -> AsyncMongoClient[Doc]:
    """A client that hands back timezone-aware UTC datetimes."""
    return AsyncMongoClient(settings.mongodb_uri, tz_aware=True, tzinfo=UTC, serverSelectionTimeoutMS=10_000)


def applied_once(event_id: str) -> tuple[Doc, Doc]:
    """Filter and update fragments that apply an event to a document at most once.

    The event id is recorded in the same single-document write as the effect, so a
    redelivered event matches nothing and changes nothing.
    """
    return (
        {"_applied": {"$ne": event_id}},
        {"$push": {"_applied": {"$each": [event_id], "$slice": -500}}},
    )


def merge_updates(*updates: Doc) -> Doc:
    """Merge update documents operator by operator ($set, $push, ...)."""
    out: Doc = {}
    for u in updates:
        for op, fields in u.items():
            out.setdefault(op, {}).update(fields)
    return out


DUPLICATE_KEY = 11000


async def insert_new(coll: AsyncCollection[Doc], docs: list[Doc]) -> tuple[int, list[int]]:
    """Insert the documents not there yet (unordered); how many were, and the positions of those
    already there (a duplicate key). Any other write error is raised, never swallowed."""
    if not docs:
        return 0, []
    try:
        result = await coll.insert_many(docs, ordered=False)
        return len(result.inserted_ids), []
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return int(exc.details.get("nInserted", 0)), [int(e["index"]) for e in errors]


# Write operations a bulk write sends in one command. FerretDB (build lindungi.6, the local and
# CI store) stopped answering an update command of about 100 updates of existing documents (80 and
# fewer answered in milliseconds; measured 30 Nov 2026; MongoDB takes 100,000). The cause, found
# on 1 Dec 2026: its update handler kept every statement's read of the collection open until the
# whole command ended. Build lindungi.8 runs the statements one at a time (deploy/local/infra.sh,
# change 7), and 200 updates in one command take 0.09 s; raising this is left to be measured.
BULK_OPS = 32


async def bulk_write_parts(
    coll: AsyncCollection[Doc], ops: Sequence[UpdateOne | ReplaceOne | DeleteOne]
) -> set[int]:
    """Unordered bulk writes of at most BULK_OPS operations each; the positions that met a
    duplicate key (an upsert that lost a race, a guard that kept a newer version). Any other
    write error is raised, never swallowed."""
    clashed: set[int] = set()
    for start in range(0, len(ops), BULK_OPS):
        try:
            await coll.bulk_write(list(ops[start : start + BULK_OPS]), ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            clashed |= {start + int(e["index"]) for e in errors}
    return clashed
