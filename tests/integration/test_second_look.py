"""intake's second look for a report's departure: a report left unmatched is filed to wait for
its worker's departure, then looked up once more, for a departure projected between the first look
and the filing. The departure's own late matching (match_waiting) finds waiting reports by their
exact keys only (worker, NIK, passport, name with date of birth hashed): a report whose name is
close to the departure's but not the same is found by this second look, or not at all."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection

from services.intake import service, store
from services.intake.app import create_app
from shared.clock import ManualClock
from shared.events.registry import DepartureRecorded, name_dob_key
from shared.settings import Settings
from tests.support.harness import running
from tests.support.registry_data import bearer
from tests.support.repatriation import departure

pytestmark = pytest.mark.integration

SEOUL = bearer("kbri-seoul")
DOB = date(1994, 1, 5)
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def report(name: str) -> dict[str, Any]:
    return {
        "country": "KR",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
        "narrative": "Wages unpaid for three months.",
        "worker": {"full_name": name, "date_of_birth": DOB.isoformat()},
    }


def born_on_the_day(rt: Any, i: int, name: str) -> DepartureRecorded:
    """A departure of worker i, born on DOB, with name and its keyed name_dob hash, in Korea."""
    d = departure(i, country="KR")
    return d.model_copy(
        update={
            "full_name": name,
            "date_of_birth": DOB,
            "name_dob_hash": rt.vault.lookup_hash("name_dob", name_dob_key(name, DOB)),
        }
    )


def departures_read(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The filters of every read of intake's departures from now on."""
    asked: list[Any] = []
    real_find = AsyncCollection.find

    def find(self: AsyncCollection[Any], *args: Any, **kwargs: Any) -> Any:
        if self.name == store.DEPARTURES:
            asked.append(args[0] if args else kwargs.get("filter"))
        return real_find(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "find", find)
    return asked


async def test_a_departure_projected_between_the_first_look_and_the_filing_matches_a_close_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings, ManualClock(NOW))
    async with running(app) as intake:
        rt = app.state.runtime
        await service.project(db=rt.db, event=born_on_the_day(rt, 0, "Dewi Lestari"))
        real_wait = store.wait_for_departure

        # the worker's departure is projected right after the first look found nothing, under a
        # name one letter longer than the report's (a name_dob hash of its own: its late matching
        # could not find the report), and before the report is filed to wait: only the report's
        # second look can find it
        async def departure_first(db: Any, keys: list[str], incident_id: str) -> None:
            await service.project(db=db, event=born_on_the_day(rt, 7, "Siti Rahayuh"))
            await real_wait(db, keys, incident_id)

        monkeypatch.setattr(store, "wait_for_departure", departure_first)
        asked = departures_read(monkeypatch)
        r = await intake.post("/v1/incidents", json=report("Siti Rahayu"), headers=SEOUL)
        assert r.status_code == 202, r.text
        assert len(asked) == 2  # both looks read the departures of the date of birth
        stored = await store.get(rt.db, r.json()["incident_id"])
        assert stored is not None
        assert (stored["match"]["worker_id"], stored["match"]["method"]) == ("w-000007", "name_dob")
        assert 0.8 < stored["match"]["confidence"] < 0.9 and stored["non_procedural"] is False
