"""A burst: 1,000 incidents from 5 missions, posted concurrently (with retries), accepted exactly once."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from shared import topics
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import envelopes, eventually, read_topic, running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

MISSIONS = {
    "kbri-seoul": "KR",
    "kbri-tokyo": "JP",
    "kbri-kuala-lumpur": "MY",
    "kdei-taipei": "TW",
    "kbri-riyadh": "SA",
}
TOTAL, CHUNK = int(os.environ.get("BURST_TOTAL", "1000")), 50


def report(i: int) -> tuple[str, dict[str, Any]]:
    mission = list(MISSIONS)[i % len(MISSIONS)]
    body = {
        "country": MISSIONS[mission],
        "category": ["unpaid_wages", "illness", "documents_withheld", "evacuation"][i % 4],
        "severity": ["low", "medium", "high", "critical"][i % 4],
        "occurred_at": "2026-11-19T10:00:00+00:00",
        "worker": {"full_name": f"Pekerja {i}", "passport_number": f"C{i:07d}"},
    }
    return mission, body


async def test_a_burst_of_1000_incidents_from_5_missions_is_accepted_exactly_once(settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    async with running(intake_app(settings, clock)) as intake:

        async def post(i: int) -> tuple[int, str]:
            mission, body = report(i)
            headers = {**bearer(mission), "Idempotency-Key": f"burst-{i}"}
            r = await intake.post("/v1/incidents", json=body, headers=headers)
            assert r.status_code in (200, 202), r.text
            return r.status_code, r.json()["incident_id"]

        started = time.perf_counter()
        first: dict[int, str] = {}
        for lo in range(0, TOTAL, CHUNK):
            results = await asyncio.gather(*(post(i) for i in range(lo, lo + CHUNK)))
            first.update(
                {i: incident_id for i, (_, incident_id) in zip(range(lo, lo + CHUNK), results, strict=True)}
            )
        posted = time.perf_counter() - started
        print(f"\n{TOTAL} incidents posted in {posted:.1f}s")
        # A mission retries a tenth of its posts (a lost answer): each returns the first incident.
        retried = await asyncio.gather(*(post(i) for i in range(0, TOTAL, 10)))
        assert {code for code, _ in retried} == {200}
        assert [iid for _, iid in retried] == [first[i] for i in range(0, TOTAL, 10)]

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            db = client[settings.database("intake")]
            assert await db["incidents"].count_documents({}) == TOTAL
            per_mission = {m: await db["incidents"].count_documents({"mission_id": m}) for m in MISSIONS}
            assert per_mission == dict.fromkeys(MISSIONS, TOTAL // len(MISSIONS))
        finally:
            await client.close()

        # At least once: the relay may send an event twice (a broker timeout after the write),
        # always as the same event (same id), which consumers drop. A second event for one
        # incident (another id) would be a bug; a missing one would be a loss.
        async def all_published() -> list[dict[str, Any]]:
            found = envelopes(await read_topic(settings, topics.INCIDENTS.name, min_count=TOTAL, timeout=60))
            return found if {e["data"]["incident_id"] for e in found} >= set(first.values()) else []

        events = await eventually(all_published, timeout=400, interval=1.0)
        published = time.perf_counter() - started
        event_ids: dict[str, set[str]] = {}
        for e in events:
            event_ids.setdefault(e["data"]["incident_id"], set()).add(e["id"])
        assert set(event_ids) == set(first.values())
        assert all(len(ids) == 1 for ids in event_ids.values()), "an incident accepted twice"
        print(
            f"all {TOTAL} events on the topic {published:.1f}s after the first post "
            f"({len(events) - TOTAL} repeats on the wire, each with its event's id)"
        )
