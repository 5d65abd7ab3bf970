"""The thin slice: an embassy posts an incident, it crosses Kafka, a case appears in casework."""

from __future__ import annotations

import pytest

from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from shared.settings import Settings
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer dev-kbri-seoul"}  # the mission's development credential

INCIDENT = {
    "mission_id": "kbri-seoul",
    "country": "KR",
    "worker": {"full_name": "Siti Rahayu"},
    "category": "unpaid_wages",
    "severity": "high",
    "occurred_at": "2026-11-20T09:30:00+09:00",
}


async def test_posted_incident_becomes_a_case(settings: Settings) -> None:
    async with running(intake_app(settings)) as intake, running(casework_app(settings)) as casework:
        casework.headers["authorization"] = "Bearer dev-officer-ani"  # casework checks roles
        r = await intake.post("/v1/incidents", json=INCIDENT, headers=AUTH)
        assert r.status_code == 202, r.text
        incident_id = r.json()["incident_id"]

        async def case():
            found = (await casework.get("/v1/cases", params={"incident_id": incident_id})).json()
            return found[0] if found else None

        opened = await eventually(case)
        got = (await casework.get(f"/v1/cases/{opened['case_id']}")).json()
        assert got["country"] == "KR"
        assert got["category"] == "unpaid_wages"
        assert got["status"] == "new"
        assert got["incident_ids"] == [incident_id]


async def test_invalid_incident_is_refused_field_by_field(settings: Settings) -> None:
    async with running(intake_app(settings)) as intake:
        bad = {**INCIDENT, "country": "Korea", "severity": "urgent"}
        r = await intake.post("/v1/incidents", json=bad, headers=AUTH)
        assert r.status_code == 422
        fields = {e["field"] for e in r.json()["errors"]}
        assert fields == {"country", "severity"}
