"""Read models kept from another service's snapshots: one rule for which version wins.

A snapshot (a document with `_id` and `version`) replaces the stored one only when its version
is higher; an equal or older one (a redelivery, or an event overtaken on the wire) changes
nothing. One conditional write by `_id`, so it holds with any number of replicas and consumers.
Used by intake's and repatriation's departure projections, and by casework's waiting cases
(a read model of its own cases, where a case leaving the queue removes its entry: `drop_unless_newer`).
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.mongo import Doc


async def keep_newer(coll: AsyncCollection[Doc], doc: Doc) -> bool:
    """Store doc unless this version or a newer one is stored; whether it was written."""
    try:
        result = await coll.replace_one(
            {"_id": doc["_id"], "version": {"$lt": doc["version"]}}, doc, upsert=True
        )
    except DuplicateKeyError:
        return False  # the stored one has this version or a newer one
    return result.modified_count == 1 or result.upserted_id is not None


async def drop_unless_newer(coll: AsyncCollection[Doc], doc_id: str, version: int) -> bool:
    """Remove the stored document unless a newer version is stored; whether one was removed."""
    result = await coll.delete_one({"_id": doc_id, "version": {"$lte": version}})
    return result.deleted_count == 1
