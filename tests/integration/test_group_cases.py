"""Group cases absorb later evacuation reports (issue 14), on the real broker and database: reports of
one evacuation (same country, while its case is open) are one case; others stand alone."""

from __future__ import annotations

from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import OFFICER, incident, publish_incident
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration


def evacuation(country: str, people: int, **over: Any) -> Any:
    key = f"group-{people}-{country}"
    return incident(category="evacuation", country=country, people_affected=people, worker_key=key, **over)


async def test_later_evacuation_reports_for_the_same_area_join_its_group_case(settings: Settings) -> None:
    async with running(create_casework(settings, ManualClock())) as cw:

        async def case_of(incident_id: str) -> dict[str, Any] | None:
            r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
            return r.json()[0] if r.json() else None

        first = evacuation("LB", 40, mission_id="kbri-beirut")
        await publish_incident(settings, first)
        case = await eventually(lambda: case_of(first.incident_id))
        assert case["group"] is True

        later = [
            evacuation("LB", 25, mission_id="kbri-beirut"),
            # one named worker reported in the same evacuation
            incident(category="evacuation", country="LB", mission_id="kbri-beirut"),
        ]
        elsewhere = evacuation("SY", 30, mission_id="kbri-damascus")
        wages = incident(category="unpaid_wages", country="LB", people_affected=12, worker_key="group-w")
        for inc in [*later, elsewhere, wages]:
            await publish_incident(settings, inc)

        async def absorbed() -> dict[str, Any] | None:
            got = (await cw.get(f"/v1/cases/{case['case_id']}", headers=OFFICER)).json()
            return got if len(got["incident_ids"]) == 3 else None

        got = await eventually(absorbed)
        assert sorted(got["incident_ids"]) == sorted([first.incident_id, *(i.incident_id for i in later)])
        assert got["people_affected"] == 40
        assert [t["kind"] for t in got["timeline"]].count("incident_linked") == 2
        other = await eventually(lambda: case_of(elsewhere.incident_id))
        own = await eventually(lambda: case_of(wages.incident_id))
        assert len({case["case_id"], other["case_id"], own["case_id"]}) == 3
        assert other["country"] == "SY" and own["category"] == "unpaid_wages"

        # once the evacuation's case is closed, a new report opens a new one
        for path, body, who in [
            ("claim", {}, OFFICER),
            ("acknowledge", {}, OFFICER),
            ("resolve", {"resolution": "everyone home"}, OFFICER),
        ]:
            r = await cw.post(f"/v1/cases/{case['case_id']}/{path}", json=body, headers=who)
            assert r.status_code == 200, r.text
        after = evacuation("LB", 5, mission_id="kbri-beirut")
        await publish_incident(settings, after)
        new = await eventually(lambda: case_of(after.incident_id))
        assert new["case_id"] != case["case_id"]
