"""Different people with one name are never one case: a name alone only suggests a link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import OFFICER
from tests.support.harness import eventually, running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
N = 60  # enough to pass the bound of 10 links several times over
RIYADH, KL = bearer("kbri-riyadh"), bearer("kbri-kuala-lumpur")


def report(country: str, place: str, **worker: Any) -> dict[str, Any]:
    return {
        "country": country,
        "place": place,
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-19T09:00:00+03:00",
        "narrative": "Unpaid for months.",
        "worker": {"full_name": "Siti Aminah", **worker},
    }


async def case_of(cw: httpx.AsyncClient, incident_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
        return r.json()[0] if r.status_code == 200 and r.json() else None

    return await eventually(found, timeout=30)  # type: ignore[no-any-return]


async def test_same_name_in_two_countries_makes_two_cases_with_a_suggestion(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(intake_app(settings, clock)) as intake, running(casework_app(settings, clock)) as cw:
        sa = await intake.post("/v1/incidents", json=report("SA", "Riyadh"), headers=RIYADH)
        my = await intake.post("/v1/incidents", json=report("MY", "Sabah"), headers=KL)
        assert sa.status_code == my.status_code == 202, (sa.text, my.text)
        a, b = sa.json(), my.json()
        assert a["worker_key"] != b["worker_key"]
        assert b["linked_incident_ids"] == [] and b["suggested_incident_ids"] == [a["incident_id"]]

        first, second = await case_of(cw, a["incident_id"]), await case_of(cw, b["incident_id"])
        assert first["case_id"] != second["case_id"]
        assert (first["country"], second["country"]) == ("SA", "MY")  # the Malaysian worker has her own
        assert second["suggested_incident_ids"] == [a["incident_id"]]

        async def suggested_back() -> dict[str, Any] | None:
            got = (await cw.get(f"/v1/cases/{first['case_id']}", headers=OFFICER)).json()
            return got if got.get("suggested_incident_ids") == [b["incident_id"]] else None

        back = await eventually(suggested_back, timeout=15)
        assert [e["kind"] for e in back["timeline"]] == ["opened", "link_suggested"]


async def test_same_name_and_date_of_birth_in_one_country_makes_one_case(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(intake_app(settings, clock)) as intake, running(casework_app(settings, clock)) as cw:
        dob = {"date_of_birth": "1990-04-02"}
        one = await intake.post("/v1/incidents", json=report("SA", "Riyadh", **dob), headers=RIYADH)
        two = await intake.post(
            "/v1/incidents", json=report("SA", "Jeddah", **dob), headers=bearer("kjri-jeddah")
        )
        a, b = one.json(), two.json()
        assert a["worker_key"] == b["worker_key"]
        assert b["linked_incident_ids"] == [a["incident_id"]] and b["suggested_incident_ids"] == []
        first = await case_of(cw, a["incident_id"])

        async def joined() -> dict[str, Any] | None:
            got = await case_of(cw, b["incident_id"])
            return got if got["case_id"] == first["case_id"] else None

        case = await eventually(joined, timeout=30)
        assert case["incident_ids"] == [a["incident_id"], b["incident_id"]]


async def test_a_large_link_group_costs_per_report_what_a_small_one_does(settings: Settings) -> None:
    """Bounded fan-out, counted in links made and written back (not timed: the machine is noisy)."""
    clock = ManualClock(NOW)
    app = intake_app(settings, clock)
    async with running(app) as intake:
        db = app.state.runtime.db
        dob = {"date_of_birth": "1988-08-08"}
        sizes = []
        for n in range(N):
            r = await intake.post(
                "/v1/incidents",
                json=report("SA", "Riyadh", **dob),
                headers={**RIYADH, "Idempotency-Key": f"grp-{n}"},
            )
            assert r.status_code == 202, r.text
            sizes.append(len(r.json()["linked_incident_ids"]))
        assert sizes[:3] == [0, 1, 2] and max(sizes) == sizes[-1] == 10
        # Links written back to earlier reports: at most 10 per new report (unbounded, every
        # report would update each earlier one: N * (N - 1) / 2 writes).
        docs = await db["incidents"].find({}, {"linked_incident_ids": 1}).to_list()
        written_back = sum(len(d.get("linked_incident_ids") or []) for d in docs) - sum(sizes)
        assert written_back == sum(sizes) <= 10 * N


async def test_the_earlier_case_gets_the_suggestion_whichever_report_casework_places_first(
    settings: Settings,
) -> None:
    """The two reports travel on two workers' keys, so on two partitions: casework may place the
    later report before the earlier one has a case (ci35 saw it). Then the suggestion waits for
    that case. Run in both orders, one after the other and at once, and as a redelivery."""
    import asyncio
    import uuid

    from services.casework import placement
    from tests.support.casework import incident

    app = casework_app(settings, ManualClock(NOW))
    async with running(app) as cw:
        rt = app.state.runtime

        async def pair(order: str) -> tuple[dict[str, Any], dict[str, Any]]:
            earlier = incident(country="SA", mission_id="kbri-riyadh", worker_name="Siti Aminah")
            later = incident(worker_name="Siti Aminah", suggested_incident_ids=[earlier.incident_id])
            place = {
                e.incident_id: (lambda e=e: placement.on_incident(rt, event_id=uuid.uuid4().hex, incident=e))
                for e in (earlier, later)
            }
            if order == "at once":
                await asyncio.gather(*(p() for p in place.values()))
            else:
                first, second = (later, earlier) if order == "later first" else (earlier, later)
                await place[first.incident_id]()
                await place[second.incident_id]()
            placed = await case_of(cw, earlier.incident_id), await case_of(cw, later.incident_id)
            for again in place.values():  # redeliveries add nothing
                await again()
            assert placed == (await case_of(cw, earlier.incident_id), await case_of(cw, later.incident_id))
            return placed

        for order in ("later first", "earlier first", "at once", "at once", "later first"):
            a, b = await pair(order)
            assert a["case_id"] != b["case_id"], order
            assert a["suggested_incident_ids"] == b["incident_ids"], order
            assert b["suggested_incident_ids"] == a["incident_ids"], order
            for case in (a, b):
                assert [e["kind"] for e in case["timeline"]] == ["opened", "link_suggested"], order
