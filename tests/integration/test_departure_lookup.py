"""A report matched by name and date of birth reads only the departures of that date whose name
could match (issue 11: a date of birth files a few dozen departures at a national year, more as the
years add up, and every report naming the date read them all, twice when it stayed unmatched). The
match itself is the same: similar names still match, a renamed departure by its new name, and a
date filed before names were kept with it is read whole."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection

from bench.seed import FIRST, LAST
from services.intake import domain, service, store
from services.intake.app import create_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import running
from tests.support.repatriation import auth, departure

pytestmark = pytest.mark.integration

BORN = date(1991, 3, 14)
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MISSION = auth("kbri-kuala-lumpur")


def _report(name: str) -> dict[str, Any]:
    return {
        "country": "MY",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+08:00",
        "worker": {"full_name": name, "date_of_birth": BORN.isoformat()},
    }


async def test_a_report_reads_only_the_departures_of_its_date_of_birth_with_a_name_like_its_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[list[str]] = []
    real_find = AsyncCollection.find

    def find(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        query = dict(args[0] if args else kwargs.get("filter") or {})
        if self.name == store.DEPARTURES:
            read.append(sorted(query["_id"]["$in"]))
        return real_find(self, *args, **kwargs)

    # thirty workers born the same day, named as the seed names them (some names alike)
    names = [
        f"{FIRST[i % len(FIRST)]} {FIRST[(i * 5 + 1) % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}"
        for i in range(30)
    ]
    app = create_app(settings, ManualClock(NOW))
    async with running(app) as intake:
        db = app.state.runtime.db
        for i, name in enumerate(names):
            event = departure(i, prefix="dob").model_copy(update={"full_name": name, "date_of_birth": BORN})
            await service.project(db=db, event=event)
        # worker 7 renamed in a later version: kept under the current name only; the first version
        # arriving again afterwards (overtaken on the wire) files no name
        renamed = departure(7, prefix="dob", version=2).model_copy(
            update={"full_name": "Kartika Permatasari", "date_of_birth": BORN}
        )
        await service.project(db=db, event=renamed)
        overtaken = departure(7, prefix="dob").model_copy(
            update={"full_name": names[7], "date_of_birth": BORN}
        )
        await service.project(db=db, event=overtaken)
        names[7] = "Kartika Permatasari"
        key = await db[store.DEPARTURE_KEYS].find_one({"_id": f"{store.BY_NAME}{BORN.isoformat()}"})
        assert [e["n"] for e in key["names"] if e["d"] == "d-dob-000007"] == ["KARTIKA PERMATASARI"]

        monkeypatch.setattr(AsyncCollection, "find", find)
        posted = {}
        for label, name in (
            ("exact", names[12]),
            ("similar", "Kartika Permatasary"),
            ("stranger", "Zulkifli Anwar"),
        ):
            posted[label] = await intake.post("/v1/incidents", json=_report(name), headers=MISSION)
        monkeypatch.undo()

    for answer in posted.values():
        assert answer.status_code == 202, answer.text
    exact, similar, stranger = (posted[k].json() for k in ("exact", "similar", "stranger"))
    assert exact["match"]["method"] == "name_dob" and exact["departure_id"] == "d-dob-000012"
    assert similar["match"]["method"] == "name_dob" and similar["departure_id"] == "d-dob-000007"
    assert stranger["non_procedural"] is True
    # Each read named only the departures whose current name could match, and the
    # stranger's two looks (before and after filing itself to wait) read none at all.
    alike = sorted(
        f"d-dob-{i:06d}"
        for i, name in enumerate(names)
        if domain.name_similarity(domain.normalised(names[12]) or "", domain.normalised(name) or "")
        >= domain.FUZZY_THRESHOLD
    )
    assert "d-dob-000012" in alike and len(alike) < 10, alike
    assert read == [alike, ["d-dob-000007"]], read


async def test_a_date_of_birth_filed_before_names_were_kept_is_read_whole(settings: Settings) -> None:
    app = create_app(settings, ManualClock(NOW))
    async with running(app) as intake:
        db = app.state.runtime.db
        for i in range(3):
            event = departure(i, prefix="old").model_copy(
                update={"full_name": f"Ani Wulandari {i}", "date_of_birth": BORN}
            )
            await service.project(db=db, event=event)
        key = f"{store.BY_NAME}{BORN.isoformat()}"
        await db[store.DEPARTURE_KEYS].update_one({"_id": key}, {"$unset": {"names": ""}})  # as filed before
        answer = await intake.post("/v1/incidents", json=_report("Ani Wulandari 2"), headers=MISSION)
    assert answer.status_code == 202, answer.text
    assert answer.json()["departure_id"] == "d-old-000002"


async def test_an_anonymised_departure_leaves_no_name_under_its_date_of_birth(settings: Settings) -> None:
    """Registry's retention anonymises a departure: its next version has no date of birth and no
    name, and intake's projection forgets them, the name kept under the date included."""
    app = create_app(settings, ManualClock(NOW))
    async with running(app):
        db = app.state.runtime.db
        for i in range(2):
            event = departure(i, prefix="gone").model_copy(
                update={"full_name": f"Rina Marlina {i}", "date_of_birth": BORN}
            )
            await service.project(db=db, event=event)
        anonymised = departure(0, prefix="gone", version=2).model_copy(
            update={"full_name": "[anonymised]", "date_of_birth": None}
        )
        await service.project(db=db, event=anonymised)
        key = await db[store.DEPARTURE_KEYS].find_one({"_id": f"{store.BY_NAME}{BORN.isoformat()}"})
    assert key["names"] == [{"d": "d-gone-000001", "n": "RINA MARLINA 1"}]
    assert key["departure_ids"] == ["d-gone-000001"]  # no longer read by a report of that date


async def test_a_departure_whose_date_of_birth_is_corrected_is_filed_under_the_new_date_only(
    settings: Settings,
) -> None:
    """A corrected date moves the departure and its name; the first version, arriving again after
    the correction (overtaken on the wire), takes back what it filed under the old date."""
    corrected = date(1991, 4, 14)
    app = create_app(settings, ManualClock(NOW))
    async with running(app) as intake:
        db = app.state.runtime.db
        first = departure(0, prefix="moved").model_copy(
            update={"full_name": "Wati Susanti", "date_of_birth": BORN}
        )
        second = departure(0, prefix="moved", version=2).model_copy(
            update={"full_name": "Wati Susanti", "date_of_birth": corrected}
        )
        for event in (first, second, first):
            await service.project(db=db, event=event)
        old = await db[store.DEPARTURE_KEYS].find_one({"_id": f"{store.BY_NAME}{BORN.isoformat()}"})
        new = await db[store.DEPARTURE_KEYS].find_one({"_id": f"{store.BY_NAME}{corrected.isoformat()}"})
        report = {
            **_report("Wati Susanti"),
            "worker": {"full_name": "Wati Susanti", "date_of_birth": "1991-04-14"},
        }
        answer = await intake.post("/v1/incidents", json=report, headers=MISSION)
    assert old["departure_ids"] == [] and old["names"] == []
    assert new["departure_ids"] == ["d-moved-000000"]
    assert new["names"] == [{"d": "d-moved-000000", "n": "WATI SUSANTI"}]
    assert answer.status_code == 202 and answer.json()["departure_id"] == "d-moved-000000", answer.text
