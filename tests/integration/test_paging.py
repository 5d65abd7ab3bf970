"""List endpoints page with a cursor: every item once, in order, the Link header naming the next page.

Before, intake, casework and repatriation capped a list at 500 without a word and took `limit=-5`.
Now a limit is 1 to 500 (422 otherwise), and a list with more items than the limit says so in a
`Link: <...after=...>; rel="next"` header (RFC 8288). Following it gives every item exactly once
even when items sharing a sort value straddle a page boundary, or new ones arrive meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.casework import store as casework_store
from services.casework.app import create_app as casework_app
from services.casework.store import CASES
from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.mongo import connect
from shared.paging import next_after
from shared.settings import Settings
from tests.integration.test_intake_api import incident
from tests.support.harness import running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

SEOUL = bearer("kbri-seoul")
DESK = bearer("officer-ani")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


async def _all_pages(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> list[list[Any]]:
    pages: list[list[Any]] = []
    after = None
    while True:
        r = await client.get(path, params={**params, **({"after": after} if after else {})}, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        after = next_after(r.headers.get("link"))
        if after is None:
            return pages
        assert len(pages) < 50, "the next page never ends"


async def test_incidents_page_by_cursor(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(intake_app(settings, clock)) as intake:
        ids = []
        for i in range(7):
            if i % 2:  # pairs reported at the same instant: the order falls back on the id
                clock.advance(timedelta(seconds=1))
            body = incident(mission_reference=f"SEOUL-{i}", worker={"full_name": f"Pekerja {i}"})
            r = await intake.post("/v1/incidents", json=body, headers=SEOUL)
            assert r.status_code == 202, r.text
            ids.append(r.json()["incident_id"])
        pages = await _all_pages(intake, "/v1/incidents", SEOUL, limit=3)
        assert [len(p) for p in pages] == [3, 3, 1]
        got = [i["incident_id"] for p in pages for i in p]
        assert sorted(got) == sorted(ids) and len(set(got)) == 7
        times = [i["reported_at"] for p in pages for i in p]
        assert times == sorted(times, reverse=True)  # newest first, across pages
        whole = await intake.get("/v1/incidents", params={"limit": 7}, headers=SEOUL)
        assert "link" not in whole.headers and [i["incident_id"] for i in whole.json()] == got
        for bad in ({"limit": -5}, {"limit": 0}, {"limit": 501}, {"after": "not-a-cursor"}):
            r = await intake.get("/v1/incidents", params=bad, headers=SEOUL)
            assert r.status_code == 422, (bad, r.text)
            assert next(iter(bad)) in r.text


async def test_a_missions_reports_page_newest_first_across_weeks_and_years(settings: Settings) -> None:
    """Read a window of time at a time (shared.paging.Order.read): the same pages as one read."""
    clock = ManualClock(NOW)
    ages = [0, 0, 1, 3, 20, 20, 100, 400, 1100, -1]  # days before NOW (-1: the reader's clock is behind)
    async with running(intake_app(settings, clock)) as intake:
        for i, age in enumerate(ages):
            clock.set(NOW - timedelta(days=age))
            occurred = (clock.now() - timedelta(hours=1)).isoformat()
            body = incident(
                mission_reference=f"SEOUL-{i}", worker={"full_name": f"Pekerja {i}"}, occurred_at=occurred
            )
            r = await intake.post("/v1/incidents", json=body, headers=SEOUL)
            assert r.status_code == 202, r.text
        clock.set(NOW)
        whole = (await intake.get("/v1/incidents", params={"limit": 50}, headers=SEOUL)).json()
        times = [i["reported_at"] for i in whole]
        assert len(whole) == len(ages) and times == sorted(times, reverse=True)
        for limit in (1, 2, 3, 4):
            pages = await _all_pages(intake, "/v1/incidents", SEOUL, limit=limit, mission_id="kbri-seoul")
            assert [i["incident_id"] for p in pages for i in p] == [i["incident_id"] for i in whole], limit


@pytest.fixture
async def casework(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    client = connect(settings)
    async with running(casework_app(settings, ManualClock(NOW))) as c:
        yield c, client[settings.database("casework")][CASES]
    await client.close()


async def test_cases_page_by_cursor_even_while_cases_arrive(casework: tuple[httpx.AsyncClient, Any]) -> None:
    client, cases = casework

    def case(i: int) -> dict[str, Any]:
        return {
            "_id": f"case-{i:03d}",
            "status": "new",
            "category": "unpaid_wages",
            "severity": "medium",
            "priority": 2,
            "country": "KR" if i % 2 else "MY",
            "queue": "east_asia-general",
            "opened_at": NOW + timedelta(minutes=i // 3),  # threes share an instant
            "incident_ids": [f"inc-{i:03d}"],
        }

    async def store_cases(numbers: range) -> None:
        # a case's id is not its incident's (changes.case_id_for): noted first, as a join does
        for i in numbers:
            await casework_store.note_holders(cases.database, [f"inc-{i:03d}"], f"case-{i:03d}")
        await cases.insert_many([case(i) for i in numbers])

    await store_cases(range(20))
    first = await client.get("/v1/cases", params={"limit": 4}, headers=DESK)
    seen = [c["case_id"] for c in first.json()]
    await store_cases(range(20, 25))  # arrive while the desk pages
    after = next_after(first.headers.get("link"))
    while after:
        r = await client.get("/v1/cases", params={"limit": 4, "after": after}, headers=DESK)
        seen += [c["case_id"] for c in r.json()]
        after = next_after(r.headers.get("link"))
    assert seen == [f"case-{i:03d}" for i in range(25)]  # each once, oldest first
    # A mission pages its jurisdiction only; several incidents in one call.
    mission = await _all_pages(client, "/v1/cases", SEOUL, limit=5)
    assert sum(len(p) for p in mission) == 12 and all(len(p) <= 5 for p in mission)
    some = await client.get(
        "/v1/cases", params=[("incident_id", "inc-001"), ("incident_id", "inc-004")], headers=DESK
    )
    assert sorted(c["case_id"] for c in some.json()) == ["case-001", "case-004"]
    assert (await client.get("/v1/cases", params={"limit": -5}, headers=DESK)).status_code == 422
