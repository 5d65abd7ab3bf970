"""A list newest first is read a window of time at a time, and gives what one read of all would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.mongo import Doc
from shared.paging import WINDOWS, Order

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
ORDER = Order(("reported_at", -1), ("_id", 1))


class Items:
    """A collection of a few documents answering the queries Order.read sends, and noting them."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs, self.asked = docs, []  # type: ignore[var-annotated]

    def find(self, query: Doc, projection: Doc | None = None) -> Items:
        self.asked.append(query)
        self.query = query
        return self

    def sort(self, keys: list[tuple[str, int]]) -> Items:
        return self

    def limit(self, n: int) -> Items:
        self.n = n
        return self

    async def to_list(self) -> list[Doc]:
        got = [d for d in self.docs if matches(d, self.query)]
        got.sort(key=lambda d: d["_id"])
        got.sort(key=lambda d: d["reported_at"], reverse=True)
        return got[: self.n]


def matches(doc: Doc, query: Doc) -> bool:
    """The few operators Order.read writes: equality, $gte/$lte/$lt/$gt on dates, $or and $and."""
    ops = {"$gte": lambda a, b: a >= b, "$lte": lambda a, b: a <= b, "$gt": lambda a, b: a > b}
    ops["$lt"] = lambda a, b: a < b
    for key, want in query.items():
        if key == "$or":
            if not any(matches(doc, q) for q in want):
                return False
        elif key == "$and":
            if not all(matches(doc, q) for q in want):
                return False
        elif isinstance(want, dict):
            for op, value in want.items():
                if not ops[op](doc[key], utc(value)):
                    return False
        elif doc.get(key) != utc(want):
            return False
    return True


def utc(value: Any) -> Any:
    """A date as MongoDB reads it: a cursor's date comes back without a zone, and means UTC."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def reports(*ages: timedelta) -> list[Doc]:
    return [{"_id": f"i{n:02d}", "reported_at": NOW - age, "mission_id": "m"} for n, age in enumerate(ages)]


async def pages(items: Items, limit: int, now: datetime = NOW) -> list[list[str]]:
    out: list[list[str]] = []
    after = None
    while True:
        docs: list[Any] = await ORDER.read(items, {"mission_id": "m"}, limit=limit + 1, after=after, now=now)
        out.append([d["_id"] for d in docs[:limit]])
        if len(docs) <= limit:
            return out
        after = ORDER.cursor(docs[limit - 1])


async def test_pages_read_in_windows_are_the_pages_of_one_read() -> None:
    day = timedelta(days=1)
    docs = reports(0 * day, -day, day, day, 3 * day, 20 * day, 20 * day, 100 * day, 400 * day, 1100 * day)
    everything = [
        d["_id"]
        for d in sorted(sorted(docs, key=lambda d: d["_id"]), key=lambda d: d["reported_at"], reverse=True)
    ]
    for limit in (1, 2, 3, 4, 50):
        got = await pages(Items(docs), limit)
        assert [i for p in got for i in p] == everything, limit  # once each, in order
        assert all(len(p) == limit for p in got[:-1])
    # One read of one window when the newest week holds the page (a report from tomorrow too).
    items = Items(docs)
    await ORDER.read(items, {"mission_id": "m"}, limit=3, now=NOW)
    assert len(items.asked) == 1 and items.asked[0]["reported_at"] == {"$gte": NOW - WINDOWS[0]}
    # A page the windows never fill ends with one read of everything left.
    items = Items(docs)
    assert len(await ORDER.read(items, {"mission_id": "m"}, limit=20, now=NOW)) == len(docs)
    assert len(items.asked) == len(WINDOWS) + 1 and "reported_at" not in items.asked[-1]


async def test_a_list_oldest_first_or_without_a_clock_is_read_at_once() -> None:
    docs = reports(timedelta(days=1), timedelta(days=40))
    for order, now in ((Order(("reported_at", 1), ("_id", 1)), NOW), (ORDER, None)):
        items = Items(docs)
        await order.read(items, {"mission_id": "m"}, limit=5, now=now)
        assert items.asked == [{"mission_id": "m"}]
    # A query that bounds the date itself is read as it is: a window would widen its bound.
    items, since = Items(docs), {"mission_id": "m", "reported_at": {"$gte": NOW - timedelta(days=2)}}
    assert [d["_id"] for d in await ORDER.read(items, dict(since), limit=5, now=NOW)] == ["i00"]
    assert items.asked == [since]
    # A cursor of a date near year 1 (only a made-up one) is read at once, not an overflow.
    near_year_one = ORDER.cursor({"reported_at": datetime(1, 1, 2, tzinfo=UTC), "_id": "x"})
    items = Items(docs)
    assert await ORDER.read(items, {"mission_id": "m"}, limit=5, after=near_year_one, now=NOW) == []
    assert len(items.asked) == 1


def test_a_made_up_cursor_is_a_422_whatever_it_holds() -> None:
    """Dates json_util cannot make (before year 1, out of range, with extra fields): 422, not 500."""
    import base64

    import pytest
    from fastapi import HTTPException

    for raw in (
        '[{"$date": "0001-01-01T00:00:00+01:00"}, "x"]',
        '[{"$date": {"$numberLong": "-70000000000000"}}, "x"]',
        '[{"$date": 1, "extra": 2}, "x"]',
        "not json",
    ):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        with pytest.raises(HTTPException) as caught:
            ORDER.after({}, cursor)
        assert caught.value.status_code == 422, raw
