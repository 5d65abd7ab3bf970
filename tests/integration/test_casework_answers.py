"""casework's answers are its declared models (issue 14, "internal keys stay inside"): every 2xx
answer has a schema in OpenAPI, and no answer carries a storage key, even after a merge."""

from __future__ import annotations

from typing import Any

import pytest

from services.casework.app import create_app
from shared.clock import ManualClock
from shared.events.intake import WorkerMatch
from shared.settings import Settings
from tests.support.casework import MISSION, OFFICER, SUPERVISOR, incident, publish_incident
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration

# How the database keeps one open case per worker, what a merge keeps to undo itself, bookkeeping.
STORAGE_KEYS = {"open_key", "join_key", "merged_previous", "_id", "_applied", "_outbox", "_claim_pending"}


def _keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


async def test_every_answer_of_casework_is_a_declared_model(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        api = (await cw.get("/openapi.json")).json()
        missing = [
            f"{method.upper()} {path} {code}"
            for path, ops in api["paths"].items()
            if path.startswith("/v1/")
            for method, op in ops.items()
            for code, answer in op.get("responses", {}).items()
            if code.startswith("2")
            and not (answer.get("content") or {}).get("application/json", {}).get("schema")
        ]
        assert missing == []
        case_schema = api["components"]["schemas"]["CaseView"]["properties"]
        assert {"case_id", "timeline", "mission_requests", "actions"} <= set(case_schema)
        assert not STORAGE_KEYS & set(case_schema)
        single = api["paths"]["/v1/cases/{case_id}"]["get"]["responses"]["200"]["content"]
        assert "CaseView" in str(single) and "MissionCaseView" in str(single)


async def test_no_case_answer_carries_a_storage_key(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        first = incident(worker_name="Nur Aini", match=WorkerMatch())
        await publish_incident(settings, first)
        second = incident(
            worker_name="Nur Aini", match=WorkerMatch(), suggested_incident_ids=[first.incident_id]
        )
        await publish_incident(settings, second)

        async def case_of(incident_id: str) -> dict[str, Any] | None:
            found = (await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)).json()
            return found[0] if found else None

        a = await eventually(lambda: case_of(first.incident_id))
        b = await eventually(lambda: case_of(second.incident_id))
        answers: list[Any] = [a, b]
        r = await cw.post(f"/v1/cases/{b['case_id']}/claim", json={}, headers=OFFICER)
        answers.append(r.json())
        r = await cw.post(
            f"/v1/cases/{b['case_id']}/mission-requests", json={"text": "visit"}, headers=OFFICER
        )
        assert r.status_code == 201, r.text
        answers.append(r.json())
        r = await cw.post(
            f"/v1/cases/{b['case_id']}/suggestions/{first.incident_id}/confirm",
            json={"reason": "same passport photo"},
            headers=OFFICER,
        )
        assert r.status_code == 200, r.text
        answers.append(r.json())
        absorbed = (await cw.get(f"/v1/cases/{a['case_id']}", headers=OFFICER)).json()
        assert absorbed["merged_into"] == b["case_id"]  # the merge kept what it needs to undo itself...
        answers.append(absorbed)
        answers.append((await cw.get("/v1/cases", headers=OFFICER)).json())
        answers.append((await cw.get(f"/v1/cases/{b['case_id']}", headers=MISSION)).json())
        answers.append((await cw.get("/v1/mission-requests", headers=MISSION)).json())
        answers.append((await cw.get("/v1/supervision", headers=SUPERVISOR)).json())
        assert not STORAGE_KEYS & _keys(answers)  # ...and none of it leaves the store
        assert absorbed["timeline"][-1]["kind"] == "merged_into"  # entries keep their own facts
        assert absorbed["timeline"][-1]["case_id"] == b["case_id"]
