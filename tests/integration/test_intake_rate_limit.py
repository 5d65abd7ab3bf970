"""Per-credential rate limits on intake's incident door, counted across two replicas in MongoDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from shared.clock import ManualClock
from shared.ratelimit import COLLECTION, RateLimiter
from shared.settings import Settings
from tests.support.harness import running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

LIMIT = 4
SEOUL, TOKYO = bearer("kbri-seoul"), bearer("kbri-tokyo")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # on a window boundary (60 s windows from the epoch)


def incident(i: int, country: str = "KR") -> dict[str, Any]:
    return {
        "country": country,
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T05:30:00+00:00",
        "worker": {"full_name": f"Pekerja {i}", "passport_number": f"C{i:07d}"},
    }


async def test_a_credential_past_its_limit_gets_429_on_every_replica_and_others_go_on(
    settings: Settings,
) -> None:
    limited = settings.model_copy(update={"incident_rate_limit": LIMIT, "incident_rate_window_seconds": 60})
    clock = ManualClock(NOW)
    async with running(intake_app(limited, clock)) as one, running(intake_app(limited, clock)) as two:
        replicas = [one, two]

        # LIMIT reports spread over both replicas are accepted; the next one, on either, is not.
        for i in range(LIMIT):
            r = await replicas[i % 2].post("/v1/incidents", json=incident(i), headers=SEOUL)
            assert r.status_code == 202, r.text
        clock.advance(timedelta(seconds=15))
        for client in replicas:
            r = await client.post("/v1/incidents", json=incident(99), headers=SEOUL)
            assert r.status_code == 429, r.text
            assert r.headers["retry-after"] == "45"
            assert r.json()["errors"][0]["field"] == "authorization"
            assert "more than 4 incident reports in 60 s" in r.json()["errors"][0]["reason"]
        # A bad body in a retry loop counts too (the limit is judged before the body).
        r = await one.post("/v1/incidents", json={"country": "KR"}, headers=SEOUL)
        assert r.status_code == 429

        # Another mission is not starved by Seoul's loop.
        r = await two.post("/v1/incidents", json=incident(200, "JP"), headers=TOKYO)
        assert r.status_code == 202, r.text

        # The next window: a concurrent loop of 12 over both replicas gets exactly LIMIT through.
        clock.advance(timedelta(seconds=45))
        answers = await asyncio.gather(
            *(replicas[i % 2].post("/v1/incidents", json=incident(300 + i), headers=SEOUL) for i in range(12))
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [202] * LIMIT + [429] * (12 - LIMIT), codes
        assert all(a.headers["retry-after"] == "60" for a in answers if a.status_code == 429)


def test_the_default_limit_is_above_what_the_burst_and_chaos_tiers_send() -> None:
    # test_intake_burst: 200 reports and 20 repeats per mission, all within one (manual-clock)
    # window; chaos: a few reports a second per mission. A client in a loop sends far more.
    assert Settings().incident_rate_limit >= 1000 > 220
    assert Settings().incident_rate_window_seconds == 60


async def test_replicas_reserving_in_chunks_admit_at_most_the_limit(settings: Settings) -> None:
    """At larger limits a replica reserves several requests per write; together they stay within it."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        db = client[settings.database("intake")]
        clock = ManualClock(NOW)
        replicas = [RateLimiter(db, clock=clock, limit=500, window_seconds=60) for _ in range(2)]
        assert replicas[0].chunk == 5
        verdicts = []
        for lo in range(0, 520, 20):
            verdicts += await asyncio.gather(
                *(replicas[i % 2].admit("kbri-seoul") for i in range(lo, lo + 20))
            )
        allowed = sum(v.allowed for v in verdicts)
        assert 500 - 2 * (5 - 1) <= allowed <= 500, allowed
        stored = await db[COLLECTION].find_one({"_id": "kbri-seoul"})
        assert stored is not None and stored["n"] <= 500 + 2 * 5 + 20 * 5  # one write per chunk
    finally:
        await client.close()
