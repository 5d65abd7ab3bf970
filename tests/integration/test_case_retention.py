"""Retention in casework on the real broker and database: a case closed long ago loses the
worker's name and every free text, and keeps its statuses, times and categories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.casework import anonymise
from services.casework.app import create_app
from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import MISSION, OFFICER, SUPERVISOR, incident, publish_incident
from tests.support.harness import eventually, running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

AGE = timedelta(days=365 * 5)


def _strings(o: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(o, dict):
        return [x for k, v in o.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(o, list):
        return [x for i, v in enumerate(o) for x in _strings(v, f"{path}[{i}]")]
    return [(path, o)] if isinstance(o, str) else []


async def test_a_case_closed_long_ago_is_anonymised_once_and_an_open_one_is_not(settings: Settings) -> None:
    clock = ManualClock()
    app = create_app(settings, clock)
    async with running(app) as cw:
        ids = []
        for name in ("Siti Rahayu", "Dewi Lestari"):
            inc = incident(worker_name=name)
            await publish_incident(settings, inc)

            async def found(inc: Any = inc) -> list[Any]:
                return (
                    await cw.get("/v1/cases", params={"incident_id": inc.incident_id}, headers=OFFICER)
                ).json()  # type: ignore[no-any-return]

            ids.append((await eventually(found))[0]["case_id"])
        closed, still_open = ids

        async def step(path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
            clock.advance(timedelta(minutes=10))
            r = await cw.post(f"/v1/cases/{closed}/{path}", json=body, headers=headers)
            assert r.status_code in (200, 201), r.text
            return r.json()  # type: ignore[no-any-return]

        await step("triage", {"reason": "Siti's employer withholds wages"}, OFFICER)
        await step("claim", {}, OFFICER)
        await step("acknowledge", {}, OFFICER)
        await step("notes", {"text": "her sister Ani lives in Busan, +82 10 5555 1234"}, OFFICER)
        rid = (await step("mission-requests", {"text": "please visit Siti"}, OFFICER))["request_id"]
        r = await cw.post(
            f"/v1/cases/{closed}/mission-requests/{rid}/answer", json={"text": "visited"}, headers=MISSION
        )
        assert r.status_code == 200, r.text
        await step("resolve", {"resolution": "wages paid to Siti Rahayu"}, OFFICER)
        await step("close", {"reason": "done"}, SUPERVISOR)

        rt = app.state.runtime
        assert (await anonymise.anonymise_closed(rt, older_than=AGE)).cases == 0  # closed just now
        clock.advance(AGE + timedelta(days=1))
        report = await anonymise.anonymise_closed(rt, older_than=AGE)
        assert report.cases == 1 and str(report).startswith("retention: anonymised 1 cases closed before")
        assert (await anonymise.anonymise_closed(rt, older_than=AGE)).cases == 0  # once

        case = (await cw.get(f"/v1/cases/{closed}", headers=SUPERVISOR)).json()
        left = [
            (path, value)
            for path, value in _strings(case)
            if any(p in value for p in ("Siti", "Busan", "5555 1234", "visited", "withholds"))
        ]
        assert left == []
        assert case["worker_name"] == "[anonymised]" and case["status"] == "closed"
        assert [e["kind"] for e in case["timeline"]][-2:] == ["resolved", "closed"]
        assert case["category"] and case["closed_at"] and case["resolved_at"] and case["anonymised_at"]
        other = (await cw.get(f"/v1/cases/{still_open}", headers=SUPERVISOR)).json()
        assert other["worker_name"] == "Dewi Lestari" and other["anonymised_at"] is None


async def test_intake_forgets_the_reports_of_an_anonymised_case(settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    app = create_app(settings, clock)
    async with running(app) as cw, running(intake_app(settings, clock)) as intake:
        report = {
            "country": "KR",
            "place": "Ulsan, dormitory 3",
            "category": "unpaid_wages",
            "severity": "high",
            "occurred_at": "2026-11-19T10:00:00+00:00",
            "narrative": "Her employer keeps her passport in the office safe.",
            "worker": {"full_name": "Siti Rahayu", "nik": "3171014501940001", "phone": "+82 10 5555 1234"},
            "reporter": {"name": "Rudi Hartono", "phone": "+82 2 783 5675"},
        }
        inc = (await intake.post("/v1/incidents", json=report, headers=bearer("kbri-seoul"))).json()

        async def opened() -> list[Any]:
            params = {"incident_id": inc["incident_id"]}
            return (await cw.get("/v1/cases", params=params, headers=OFFICER)).json()  # type: ignore[no-any-return]

        case_id = (await eventually(opened))[0]["case_id"]
        for path, body, who in (
            ("triage", {"reason": "wages"}, OFFICER),
            ("claim", {}, OFFICER),
            ("acknowledge", {}, OFFICER),
            ("resolve", {"resolution": "paid"}, OFFICER),
            ("close", {"reason": "done"}, SUPERVISOR),
        ):
            r = await cw.post(f"/v1/cases/{case_id}/{path}", json=body, headers=who)
            assert r.status_code == 200, r.text
        clock.advance(AGE + timedelta(days=1))
        assert (await anonymise.anonymise_closed(app.state.runtime, older_than=AGE)).cases == 1

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            incidents = client[settings.database("intake")]["incidents"]

            async def forgotten() -> dict[str, Any] | None:
                doc = await incidents.find_one({"_id": inc["incident_id"]})
                return doc if doc and doc.get("anonymised_at") else None

            doc = await eventually(forgotten)
        finally:
            await client.close()
        assert (doc["narrative"], doc["worker_name"], doc["worker"], doc["reporter"], doc["place"]) == (
            "[anonymised]",
            "[anonymised]",
            None,
            None,
            None,
        )
        assert (doc["country"], doc["category"], doc["severity"]) == ("KR", "unpaid_wages", "high")
        r = await intake.get(f"/v1/incidents/{inc['incident_id']}", headers=OFFICER)
        assert r.status_code == 200 and r.json()["worker_name"] == "[anonymised]"
