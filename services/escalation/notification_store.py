"""escalation's MongoDB, the notification side: every notification, and its delivery in flight.

A notification's record (NOTIFICATIONS) is inserted once, by its id, and says what became of
it; its delivery (DELIVERIES, same _id) is the live part: next try, tries so far, and the
outbox entry of its outcome. A finished delivery whose outcome is published is folded into
the record and deleted (fold_finished), so the scans stay small. Reads and writes go by _id;
the claim of a try adds the try count to the filter (a fencing token): on FerretDB that filter
scans DELIVERIES, which holds only what is in flight.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Doc
from shared.outbox import Outbox
from shared.paging import Order

NOTIFICATIONS = "notifications"  # every notification (one per action and contact), forever, by _id
WITHDRAWN = "withdrawn"  # actions whose undelivered notifications are withdrawn, by action id
DELIVERIES = "deliveries"  # notifications still to send or to report: small, scanned by next_at


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """The indexes of the notification collections (store.ensure_indexes calls this)."""
    await db[NOTIFICATIONS].create_index([("case_id", 1), ("created_at", 1)])
    # the notification inbox (finished ones, newest first; all regions, or one)
    await db[NOTIFICATIONS].create_index([("state", 1), ("created_at", -1), ("_id", 1)])
    await db[NOTIFICATIONS].create_index([("region", 1), ("state", 1), ("created_at", -1), ("_id", 1)])
    await db[DELIVERIES].create_index([("state", 1), ("next_at", 1)])
    await db[DELIVERIES].create_index([("action_id", 1)])  # an action's deliveries, withdrawn at once


async def add_notification(db: AsyncDatabase[Doc], record: Doc) -> Doc:
    """Insert a notification's record unless it exists; the stored record either way."""
    doc = await db[NOTIFICATIONS].find_one_and_update(
        {"_id": record["_id"]}, {"$setOnInsert": record}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert doc is not None
    return doc


async def add_delivery(db: AsyncDatabase[Doc], delivery: Doc) -> None:
    """Queue a delivery unless it is queued already (a redelivered action adds nothing)."""
    try:
        await db[DELIVERIES].insert_one(delivery)
    except DuplicateKeyError:
        pass


async def due_deliveries(db: AsyncDatabase[Doc], now: datetime, limit: int) -> list[Doc]:
    return await db[DELIVERIES].find({"state": "pending", "next_at": {"$lte": now}}).limit(limit).to_list()


async def notification(db: AsyncDatabase[Doc], notification_id: str) -> Doc | None:
    return await db[NOTIFICATIONS].find_one({"_id": notification_id})


async def claim_try(
    db: AsyncDatabase[Doc], delivery: Doc, *, next_at: datetime, trying_until: datetime
) -> Doc | None:
    """Take the next try of a delivery (one replica per try); the delivery after, or None if lost.

    `trying_until` marks the try in flight (a withdrawal leaves it to the try, which may be sending).
    """
    return await db[DELIVERIES].find_one_and_update(
        {"_id": delivery["_id"], "state": "pending", "attempts": delivery["attempts"]},
        {"$inc": {"attempts": 1}, "$set": {"next_at": next_at, "trying_until": trying_until}},
        return_document=ReturnDocument.AFTER,
    )


async def note_failure(db: AsyncDatabase[Doc], delivery_id: str, error: str) -> None:
    """A try failed and another will come: no longer in flight."""
    await db[DELIVERIES].update_one(
        {"_id": delivery_id}, {"$set": {"last_error": error}, "$unset": {"trying_until": ""}}
    )


async def pending_of_actions(db: AsyncDatabase[Doc], action_ids: list[str]) -> list[Doc]:
    """The deliveries of these actions not finished yet (waiting for a try, or in one)."""
    if not action_ids:
        return []
    return await db[DELIVERIES].find({"action_id": {"$in": action_ids}, "state": "pending"}).to_list()


async def finish_delivery(db: AsyncDatabase[Doc], delivery_id: str, fields: Doc, entries: list[Doc]) -> bool:
    """Record a delivery's outcome and its event in one write; False if another try finished it."""
    update = Outbox.on_update({"$set": fields}, entries)
    result = await db[DELIVERIES].update_one({"_id": delivery_id, "state": "pending"}, update)
    return result.modified_count == 1


async def fold_finished(db: AsyncDatabase[Doc], limit: int = 200) -> int:
    """Copy published outcomes into the records, then drop those deliveries."""
    done = (
        await db[DELIVERIES]
        .find({"state": {"$in": ["sent", "failed", "withdrawn"]}, "_outbox_pending": False})
        .limit(limit)
        .to_list()
    )
    for finished in done:
        keep = {k: finished.get(k) for k in ("state", "attempts", "finished_at", "last_error")}
        await db[NOTIFICATIONS].update_one({"_id": finished["_id"]}, {"$set": keep})
        await db[DELIVERIES].delete_one({"_id": finished["_id"]})
    return len(done)


# The inbox's order, newest first; its cursor pages it.
INBOX_ORDER = Order(("created_at", -1), ("_id", 1))
FINISHED = ["sent", "failed", "withdrawn"]


async def inbox(
    db: AsyncDatabase[Doc],
    *,
    region: str | None,
    case_ids: list[str] | None,
    states: list[str],
    limit: int,
    after: str | None,
    now: datetime | None = None,
) -> list[Doc]:
    """Finished notifications (their outcome folded into the record), newest first, of a region
    or of given cases (or all); given `now`, a window of time back from it at a time (Order.read)."""
    query: Doc = {"state": {"$in": states}}
    if region is not None:
        query["region"] = region
    if case_ids is not None:
        query["case_id"] = {"$in": case_ids}
    return await INBOX_ORDER.read(db[NOTIFICATIONS], query, limit=limit, after=after, now=now)


async def notifications_of(db: AsyncDatabase[Doc], case_id: str, limit: int = 100) -> list[Doc]:
    return await db[NOTIFICATIONS].find({"case_id": case_id}).sort("created_at", 1).limit(limit).to_list()


async def delivery(db: AsyncDatabase[Doc], delivery_id: str) -> Doc | None:
    return await db[DELIVERIES].find_one({"_id": delivery_id})


async def withdraw_actions(db: AsyncDatabase[Doc], action_ids: list[str], *, at: datetime, by: str) -> None:
    """Mark actions withdrawn: their notifications not yet sent will not be."""
    for action_id in action_ids:
        await db[WITHDRAWN].update_one(
            {"_id": action_id}, {"$setOnInsert": {"at": at, "by": by}}, upsert=True
        )


async def withdrawn(db: AsyncDatabase[Doc], action_id: str) -> Doc | None:
    return await db[WITHDRAWN].find_one({"_id": action_id})
