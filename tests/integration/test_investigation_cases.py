"""Investigation cases (issue 14), on the real broker and database: a case opened by a counting rule
references the incidents that triggered it and carries their country, region and queue."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from services.escalation import store
from services.escalation.app import create_app as create_escalation
from shared.clock import ManualClock
from shared.events.intake import IncidentAccepted, IncidentMatched, WorkerMatch
from shared.settings import Settings
from shared.topics import ESCALATIONS
from tests.support.escalation import OFFICER, T0, envelope, incident, published, send
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration


async def test_an_agency_investigation_names_its_incidents_country_region_and_queue(
    settings: Settings,
) -> None:
    start = T0 + timedelta(days=3)
    clock = ManualClock(start)
    escalation = create_escalation(settings, clock, timer_poll_seconds=0.1)
    async with running(escalation), running(create_casework(settings, clock)) as cw:
        agency = "p3mi-" + uuid.uuid4().hex[:6]
        incs = [incident(agency, at=start + timedelta(days=d)) for d in (0, 4, 9)]  # in Saudi Arabia
        await send(
            settings, *[(i, envelope(i, time=i.reported_at, key=i.worker_key), i.worker_key) for i in incs]
        )

        async def investigation() -> dict[str, Any] | None:
            cases = (await cw.get("/v1/cases", headers=OFFICER)).json()
            found = [c for c in cases if c["kind"] == "investigation" and c.get("agency_id") == agency]
            return found[0] if found else None

        case = await eventually(investigation)
        assert sorted(case["trigger_incident_ids"]) == sorted(i.incident_id for i in incs)
        assert (case["country"], case["region"], case["queue"]) == (
            "SA",
            "middle_east",
            "middle_east-general",
        )
        assert case["incident_ids"] == []  # the reports keep their own cases
        full = (await cw.get(f"/v1/cases/{case['case_id']}", headers=OFFICER)).json()
        assert sorted(full["timeline"][0]["incident_ids"]) == sorted(i.incident_id for i in incs)
        for i in incs:  # each report still finds its own protection case
            own = (await cw.get("/v1/cases", params={"incident_id": i.incident_id}, headers=OFFICER)).json()
            assert [c["kind"] for c in own] == ["protection"]


async def test_a_late_match_counts_toward_the_agency_pattern_once(settings: Settings) -> None:
    start = T0 + timedelta(days=3)
    clock = ManualClock(start)
    app = create_escalation(settings, clock, timer_poll_seconds=0.1)
    async with running(app):
        db = app.state.runtime.db
        late_agency, twice_agency = ("p3mi-" + uuid.uuid4().hex[:6] for _ in range(2))
        # agency one: two reports name it, a third is matched to it only later
        known = [incident(late_agency, at=start + timedelta(days=d)) for d in (0, 2)]
        unknown = incident(None, at=start + timedelta(days=3))
        # agency two: two reports name it, and one of them is matched later too (still two incidents)
        twice = [incident(twice_agency, at=start + timedelta(days=d)) for d in (0, 1)]
        events: list[Any] = [*known, unknown, *twice]
        events += [matched(unknown, late_agency, start + timedelta(days=5))]
        events += [matched(twice[0], twice_agency, start + timedelta(days=2))]
        await send(
            settings, *[(e, envelope(e, time=when(e), key=e.worker_key), e.worker_key) for e in events]
        )

        async def members(agency: str, n: int) -> bool:
            docs = await store.counters(db)
            return sum(len(d["members"]) for d in docs if d["key"] == agency) >= n

        await eventually(lambda: members(twice_agency, 3))
        opened = await eventually(lambda: published(settings, ESCALATIONS.name, subject_id=late_agency))
        assert [e["data"]["kind"] for e in opened] == ["open_case"]
        assert sorted(opened[0]["data"]["incident_ids"]) == sorted(i.incident_id for i in [*known, unknown])
        assert opened[0]["data"]["country"] == "SA"
        assert await published(settings, ESCALATIONS.name, timeout=1.0, subject_id=twice_agency) == []


def matched(inc: IncidentAccepted, agency: str, at: datetime) -> IncidentMatched:
    return IncidentMatched(
        incident_id=inc.incident_id,
        worker_key=inc.worker_key,
        match=WorkerMatch(
            worker_id="w-" + inc.incident_id[:8], method="passport", confidence=1.0, non_procedural=False
        ),
        departure_id="d-" + inc.incident_id[:8],
        agency_id=agency,
        matched_at=at,
        country=inc.country,
        category=inc.category,
    )


def when(e: Any) -> datetime:
    return e.matched_at if isinstance(e, IncidentMatched) else e.reported_at
