"""The waiting cases' entries (services/casework/store.py), without I/O: what an entry holds, the
change count every case write raises, the queues a write moves the stamps of, and the per-replica
cache of queue answers kept by those stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.casework import queue_cache, store
from services.casework.models import QueueCase
from shared.clock import ManualClock


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


# --- the queue answers' cache (services/casework/queue_cache.py) -----------------------------------


def test_a_kept_answer_is_served_while_its_stamp_stands_and_never_after_it_moves() -> None:
    clock = ManualClock()
    cache = queue_cache.StampedCache(clock)
    assert cache.get(("cases", "q"), (1, "t1")) is None
    cache.put(("cases", "q"), (1, "t1"), ["a"])
    assert cache.get(("cases", "q"), (1, "t1")) == ["a"]
    assert cache.get(("cases", "q"), (2, "t2")) is None, "a moved stamp recomputes"
    assert cache.get(("cases", "other"), (1, "t1")) is None, "keys do not share answers"
    # a queue that never changed (no stamp yet) is kept under None, and its first change moves it
    cache.put(("overview", "q"), None, (0, None))
    assert cache.get(("overview", "q"), None) == (0, None)
    assert cache.get(("overview", "q"), (1, "t1")) is None
    assert (cache.hits, cache.misses) == (2, 4)


def test_a_kept_answer_expires_after_the_ttl_whatever_the_stamps_say() -> None:
    clock = ManualClock()
    cache = queue_cache.StampedCache(clock, ttl=timedelta(seconds=30))
    cache.put("k", (1, None), "v")
    clock.advance(timedelta(seconds=29))
    assert cache.get("k", (1, None)) == "v"
    clock.advance(timedelta(seconds=1))
    assert cache.get("k", (1, None)) is None
    cache.put("k", (1, None), "w")  # recomputed: kept afresh
    assert cache.get("k", (1, None)) == "w"


def test_an_entry_names_its_queue_and_those_it_left_and_a_tombstone_only_those() -> None:
    assert store.queues_named(None) == set()
    assert store.queues_named({"queue": "b", "left": ["a"]}) == {"a", "b"}
    assert store.queues_named({"queue": "b"}) == {"b"}  # written by the fill, before `left`
    assert store.queues_named({"queue": None, "left": ["a"]}) == {"a"}
