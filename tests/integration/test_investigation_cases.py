"""Investigation cases (issue 14), on the real broker and database: a case opened by a counting rule
references the incidents that triggered it and carries their country, region and queue."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from services.escalation.app import create_app as create_escalation
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.escalation import OFFICER, T0, envelope, incident, send
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
