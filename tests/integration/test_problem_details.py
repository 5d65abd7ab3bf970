"""Every service answers its errors in one shape: RFC 9457 problem details (application/problem+json)
with the field errors in `errors`: a validation error, a 404, a 401 and a conflict of each of the
five services, on the real broker and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.casework.app import create_app as casework_app
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation import store as repatriation_store
from services.repatriation.app import create_app as repatriation_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.casework import OFFICER, case_of, incident, publish_incident
from tests.support.escalation import SUPERVISOR, T0
from tests.support.harness import eventually, running
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

CORE = {"type", "title", "status", "detail"}


def problem(r: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    """The answer's problem body, checked for the one shape; `fields` must be named in `errors`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert CORE <= set(body), body
    assert body["type"] == "about:blank" and body["title"] == HTTPStatus(status).phrase
    assert body["status"] == status and isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == r.request.url.path
    assert "field" not in body and not isinstance(body["detail"], list)
    for error in body.get("errors", []):
        assert set(error) == {"field", "reason"} and error["field"] and error["reason"], error
    named = {e["field"] for e in body.get("errors", [])}
    assert set(fields) <= named, (fields, named)
    return body


async def test_intake(settings: Settings) -> None:
    seoul = bearer("kbri-seoul")
    report = {
        "country": "KR",
        "category": "injury",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
        "worker": {"full_name": "Budi Santoso", "date_of_birth": "1990-01-01"},
    }
    async with running(intake_app(settings, ManualClock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC)))) as c:
        problem(
            await c.post("/v1/incidents", json={**report, "severity": "dire"}, headers=seoul), 422, "severity"
        )
        problem(await c.get("/v1/incidents/nope", headers=seoul), 404, "incident_id")
        body = problem(await c.post("/v1/incidents", json=report), 401, "authorization")
        assert body["detail"] == "authorization: a bearer credential is required"
        # intake has no 409: a used Idempotency-Key with another report is its conflict (422)
        key = {**seoul, "Idempotency-Key": "pd-1"}
        assert (await c.post("/v1/incidents", json=report, headers=key)).status_code == 202
        slip = await c.post("/v1/incidents", json={**report, "category": "death"}, headers=key)
        assert "category" in problem(slip, 422, "Idempotency-Key")["errors"][0]["reason"]
        # and the bodies the strict reader refuses before any route, in the same shape
        dup = json.dumps(report)[:-1] + ', "country": "JP"}'
        problem(
            await c.post("/v1/incidents", content=dup, headers={**seoul, "content-type": "application/json"}),
            422,
            "country",
        )
        problem(
            await c.post(
                "/v1/incidents", content=b"{", headers={**seoul, "content-type": "application/json"}
            ),
            400,
            "(body)",
        )
        text = {**seoul, "content-type": "text/plain"}
        problem(await c.post("/v1/incidents", content=json.dumps(report), headers=text), 415, "content-type")
        huge = {**report, "narrative": "x" * 2_000_000}
        problem(await c.post("/v1/incidents", json=huge, headers=seoul), 413, "(body)")  # intake's own limit
        # Starlette's own answers too: an unknown path, a method the path does not take
        assert problem(await c.get("/v1/nothing-here"), 404)["detail"] == "Not Found"
        problem(await c.delete("/v1/incidents"), 405)


async def test_registry(settings: Settings) -> None:
    async with running(registry_app(settings)) as c:
        problem(await c.post("/v1/departures", json=departure(nik="12"), headers=OPERATOR), 422, "nik")
        problem(await c.get("/v1/departures/nope", headers=OPERATOR), 404, "departure_id")
        problem(await c.get("/v1/departures/nope"), 401, "authorization")
        assert (await c.post("/v1/departures", json=departure(), headers=OPERATOR)).status_code == 201
        again = problem(await c.post("/v1/departures", json=departure(), headers=OPERATOR), 409)
        assert again["detail"] == "this departure is recorded already"
        assert again["current"]["status"] == "departed"  # the departure as it stands, as before


async def test_casework(settings: Settings) -> None:
    async with running(casework_app(settings, ManualClock())) as c:
        problem(await c.get("/v1/cases", params={"limit": "many"}, headers=OFFICER), 422, "limit")
        problem(await c.post("/v1/cases/nope/claim", json={}, headers=OFFICER), 404, "case_id")
        problem(await c.get("/v1/cases/nope"), 401, "authorization")
        inc = incident()
        await publish_incident(settings, inc)
        cid = (await eventually(lambda: case_of(c, inc.incident_id)))["case_id"]
        r = await c.post(f"/v1/cases/{cid}/acknowledge", json={}, headers=OFFICER)
        assert problem(r, 409, "status")["current_status"] == "new"


async def test_escalation(settings: Settings) -> None:
    async with running(escalation_app(settings, ManualClock(T0), timer_loop=False)) as c:
        problem(await c.post("/v1/rules", json={"yaml": 5}, headers=SUPERVISOR), 422, "yaml")
        problem(await c.get("/v1/rules/versions/999", headers=SUPERVISOR), 404, "version")
        problem(await c.get("/v1/rules"), 401, "authorization")
        # escalation has no 409: a rule file refused whole names each rule's field by its path
        broken = "version: 1\nrules:\n  - id: r1\n    when: {event: nothing}\n"
        body = problem(await c.post("/v1/rules", json={"yaml": broken}, headers=SUPERVISOR), 422)
        assert body["errors"] and all(e["field"] for e in body["errors"])


async def test_repatriation(settings: Settings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        db = client[settings.database("repatriation")]
        await repatriation_store.record_case(db, case_id="case-1", country="MY", opened_at=None)
    finally:
        await client.close()
    desk, kl = bearer("officer-ani"), bearer("kbri-kuala-lumpur")
    living = {"kind": "living", "case_id": "case-1", "country": "MY", "reason": "wants to go home"}
    async with running(repatriation_app(settings, ManualClock())) as c:
        problem(
            await c.post("/v1/repatriations", json={**living, "kind": "by-sea"}, headers=desk), 422, "kind"
        )
        problem(await c.get("/v1/repatriations/nope", headers=desk), 404, "repatriation_id")
        problem(await c.get("/v1/repatriations/nope"), 401, "authorization")
        r = await c.post("/v1/repatriations", json=living, headers=desk)
        assert r.status_code == 201, r.text
        rid = r.json()["repatriation_id"]
        r = await c.post(f"/v1/repatriations/{rid}/steps/departed/complete", json={}, headers=kl)
        body = problem(r, 409, "status")
        assert body["current_step"] not in (None, "departed") and body["repatriation_id"] == rid
        assert body["current_status"] == "active"
