"""The waiting cases' entries (services/casework/store.py), without I/O: what an entry holds and
the change count every case write raises."""

from __future__ import annotations

from datetime import UTC, datetime

from services.casework import store
from services.casework.models import QueueCase


def test_an_entry_holds_every_field_of_the_queue_listing() -> None:
    # the listing is answered from the entries alone: a field added to QueueCase must be kept too
    assert set(QueueCase.model_fields) - {"case_id"} <= set(store.WAITING_FIELDS)


def test_an_entry_is_the_case_id_its_change_count_and_the_listed_fields() -> None:
    at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    case = {"_id": "c1", store.VERSION: 7, "queue": "east_asia-general", "status": "new", "opened_at": at}
    entry = store.waiting_entry(case)
    assert (entry["_id"], entry["version"], entry["queue"], entry["opened_at"]) == (
        "c1",
        7,
        "east_asia-general",
        at,
    )
    assert set(entry) == {"_id", "version", *store.WAITING_FIELDS}
    assert store.waiting_entry({"_id": "c2", "status": "new"})["version"] == 0  # stored before counting


def test_every_case_write_raises_the_change_count_beside_its_own_increments() -> None:
    update = {"$set": {"status": "assigned"}, "$inc": {"claims": 1}}
    counted = store._counted(update)
    assert counted == {"$set": {"status": "assigned"}, "$inc": {"claims": 1, store.VERSION: 1}}
    assert update == {"$set": {"status": "assigned"}, "$inc": {"claims": 1}}, "the caller's update is kept"
    assert store._counted({"$set": {"a": 1}})["$inc"] == {store.VERSION: 1}
