"""Personal data as the law asks, on the real broker and database: unmasked reads and narrative
reads are recorded (who, when, why) and listed per worker to auditors; one worker's record is
exported, by NIK, across services."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from deploy.cli import pii
from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import eventually, running
from tests.support.registry_data import OFFICER, OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NIK = "3171014501940001"
AUDITOR = bearer("auditor-fajar")
SEOUL = bearer("kbri-seoul")


async def test_reads_are_audited_per_worker_and_a_worker_is_exported_by_nik(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with (
        running(registry_app(settings, clock)) as registry,
        running(intake_app(settings, clock)) as intake,
        running(casework_app(settings, clock)) as casework,
    ):
        dep = (await registry.post("/v1/departures", json=departure(nik=NIK), headers=OPERATOR)).json()
        worker_id = dep["worker_id"]
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:

            async def projected() -> int:
                return await client[settings.database("intake")]["departures"].count_documents({})

            await eventually(projected)
        finally:
            await client.close()
        report = {
            "country": "KR",
            "category": "unpaid_wages",
            "severity": "high",
            "occurred_at": "2026-11-19T10:00:00+00:00",
            "narrative": "Wages unpaid since August; the employer keeps her passport.",
            "worker": {"nik": NIK},
        }
        incident = (await intake.post("/v1/incidents", json=report, headers=SEOUL)).json()
        assert incident["match"]["worker_id"] == worker_id

        # Unmasked for a registry operator, with a reason; masked for an officer, and not recorded.
        clock.advance(timedelta(minutes=1))
        r = await registry.get(
            f"/v1/workers/{worker_id}",
            params={"unmask": "true"},
            headers={**OPERATOR, "X-Purpose": "calling the family"},
        )
        assert r.json()["nik"] == NIK
        r = await registry.get(f"/v1/workers/{worker_id}", headers=OFFICER)
        assert r.json()["nik"] == "************0001"
        clock.advance(timedelta(minutes=1))
        found = await registry.post(
            "/v1/workers/search",
            json={"nik": NIK},
            params={"unmask": "true"},
            headers={**OPERATOR, "X-Purpose": "checking the passport"},
        )
        assert [w["worker_id"] for w in found.json()] == [worker_id]
        # The narrative, read by an officer.
        clock.advance(timedelta(minutes=1))
        r = await intake.get(
            f"/v1/incidents/{incident['incident_id']}/narrative",
            headers={**OFFICER, "X-Purpose": "triage"},
        )
        assert r.status_code == 200 and "passport" in r.json()["narrative"]
        r = await intake.get(f"/v1/incidents/{incident['incident_id']}/narrative", headers=SEOUL)
        assert r.status_code == 403

        reads = (
            await registry.get("/v1/audit/reads", params={"worker_id": worker_id}, headers=AUDITOR)
        ).json()
        assert [(x["actor"], x["purpose"], x["via"]) for x in reads] == [
            ("registry-operator", "checking the passport", "POST /v1/workers/search"),
            ("registry-operator", "calling the family", "GET /v1/workers/{worker_id}"),
        ]
        assert reads[1]["fields"] == ["nik", "passport_number", "phone"]
        assert reads[1]["at"].startswith("2026-11-20T06:01:00")
        narrative = (
            await intake.get("/v1/audit/reads", params={"worker_id": worker_id}, headers=AUDITOR)
        ).json()
        assert [(x["actor"], x["fields"], x["purpose"], x["subject"]) for x in narrative] == [
            ("officer-ani", ["narrative"], "triage", incident["incident_id"])
        ]
        r = await registry.get("/v1/audit/reads", params={"worker_id": worker_id}, headers=OFFICER)
        assert r.status_code == 403

        async def case_opened() -> list[Any]:
            r = await casework.get("/v1/cases", params={"worker_key": worker_id}, headers=AUDITOR)
            return r.json()  # type: ignore[no-any-return]

        await eventually(case_opened)

    export = await pii.export_worker(settings, NIK, operator="tester", purpose="data subject's request")
    assert export["worker_id"] == worker_id
    assert export["registry"]["worker"]["nik"] == NIK
    assert export["registry"]["worker"]["passport_number"] == "C1234567"
    assert [d["id"] for d in export["registry"]["departures"]] == [dep["departure_id"]]
    [inc] = export["intake"]["incidents"]
    assert inc["id"] == incident["incident_id"] and inc["worker"]["nik"] == NIK
    assert "employer keeps her passport" in inc["narrative"]
    assert [c["incident_ids"] for c in export["casework"]["cases"]] == [[incident["incident_id"]]]
    assert [r["via"] for r in export["read_audit"]][-1] == "lindungi pii export"
    assert len(export["read_audit"]) == 4
    text = json.dumps(export, default=str)
    assert "v2:" not in text and "_outbox" not in text
