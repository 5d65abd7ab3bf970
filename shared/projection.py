"""Read models kept from another service's snapshots: one rule for which version wins.

A snapshot (a document with `_id` and `version`) replaces the stored one only when its version
is higher; an equal or older one (a redelivery, or an event overtaken on the wire) changes
nothing. One conditional write by `_id`, so it holds with any number of replicas and consumers.
Used by intake's and repatriation's departure projections.
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.mongo import Doc


def older_than(doc: Doc) -> Doc:
    """The filter of keep_newer's write (a replacement with upsert): the stored document, if it is
    older. In a bulk write, a duplicate key at its position means this version or a newer one is
    stored (shared.mongo.bulk_write_parts names the positions)."""
    return {"_id": doc["_id"], "version": {"$lt": doc["version"]}}


async def keep_newer(coll: AsyncCollection[Doc], doc: Doc) -> bool:
    """Store doc unless this version or a newer one is stored; whether it was written."""
    try:
        result = await coll.replace_one(older_than(doc), doc, upsert=True)
    except DuplicateKeyError:
        return False  # the stored one has this version or a newer one
    return result.modified_count == 1 or result.upserted_id is not None
