"""Hostile and sloppy bodies get a 4xx naming the problem, in the one error shape; nothing is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

SEOUL = bearer("kbri-seoul")
JSON = {**SEOUL, "content-type": "application/json"}
GOOD: dict[str, Any] = {
    "country": "KR",
    "category": "injury",
    "severity": "high",
    "occurred_at": "2026-11-20T09:30:00+09:00",
    "worker": {"full_name": "Budi Santoso", "date_of_birth": "1990-01-01"},
}


async def test_hostile_bodies_are_refused_by_name_and_nothing_is_stored(settings: Settings) -> None:
    app = intake_app(settings, ManualClock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC)))
    async with running(app) as intake:
        post = intake.post

        deep = b"[" * 10_000 + b"]" * 10_000
        r = await post("/v1/incidents", content=deep, headers=JSON)
        assert r.status_code == 422 and "nested deeper" in r.json()["errors"][0]["reason"]

        dup = json.dumps(GOOD)[:-1] + ', "country": "JP"}'
        r = await post("/v1/incidents", content=dup.encode(), headers=JSON)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"

        r = await post("/v1/incidents", content=b'{"country": "KR",', headers=JSON)
        assert r.status_code == 400 and "byte 17" in r.json()["errors"][0]["reason"]

        r = await post(
            "/v1/incidents",
            content=json.dumps(GOOD).encode(),
            headers={**SEOUL, "content-type": "text/plain"},
        )
        assert r.status_code == 415 and r.json()["errors"][0]["field"] == "content-type"

        r = await post("/v1/incidents", json={**GOOD, "people_affected": "3"}, headers=SEOUL)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "people_affected"

        r = await post("/v1/incidents", json={**GOOD, "country": 7}, headers=SEOUL)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "country"

        r = await post("/v1/incidents", json={**GOOD, "narrative": "x" * 2_000_000}, headers=SEOUL)
        assert r.status_code == 413

        assert await app.state.runtime.db["incidents"].count_documents({}) == 0
        r = await post("/v1/incidents", json=GOOD, headers=SEOUL)  # and the door still works
        assert r.status_code == 202, r.text
