"""Retention on the real broker and database: departures that ended long ago lose the person and
keep the statistics; a worker with a current departure keeps everything; intake's projection follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.registry import service
from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.service import Runtime
from shared.settings import Settings
from tests.support.harness import eventually, running
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
RETURNED = {"nik": "3171014501940011", "passport_number": "C9100011", "full_name": "Ani Pulang"}
ABROAD = {"nik": "3171014501940022", "passport_number": "C9100022", "full_name": "Budi Rantau"}


async def test_ended_departures_are_anonymised_and_statistics_stay(settings: Settings) -> None:
    clock = ManualClock(NOW)
    app = registry_app(settings, clock)
    async with running(app) as registry, running(intake_app(settings, clock)):
        gone = (await registry.post("/v1/departures", json=departure(**RETURNED), headers=OPERATOR)).json()
        r = await registry.patch(
            f"/v1/departures/{gone['departure_id']}", json={"status": "returned"}, headers=OPERATOR
        )
        assert r.status_code == 200, r.text
        # Budi: one departure returned long ago, and one abroad now (a worker who went again)
        old = departure(**ABROAD, departure_date="2020-01-10", status="returned")
        await registry.post("/v1/departures", json=old, headers=OPERATOR)
        away = (await registry.post("/v1/departures", json=departure(**ABROAD), headers=OPERATOR)).json()

        rt: Runtime = app.state.runtime
        early = await service.anonymise_ended(rt=rt, older_than=timedelta(days=365 * 5))
        assert (early.departures, early.workers) == (0, 0)  # nothing is old enough yet

        clock.advance(timedelta(days=365 * 5 + 1))
        report = await service.anonymise_ended(rt=rt, older_than=timedelta(days=365 * 5))
        assert (report.departures, report.workers) == (3 - 1, 1)
        assert "anonymised 2 departures ended before 2026-11-21T06:00" in str(report)
        again = await service.anonymise_ended(rt=rt, older_than=timedelta(days=365 * 5))
        assert (again.departures, again.workers) == (0, 0)

        r = (await registry.get(f"/v1/departures/{gone['departure_id']}", headers=OPERATOR)).json()
        assert (r["full_name"], r["date_of_birth"], r["home_regency"]) == ("[anonymised]", None, None)
        assert (r["home_province"], r["sector"], r["status"]) == ("DKI Jakarta", "welding", "returned")
        assert r["anonymised_at"] is not None
        # Ani, all of whose departures ended, cannot be found or read any more
        found = await registry.post("/v1/workers/search", json={"nik": RETURNED["nik"]}, headers=OPERATOR)
        assert found.json() == []
        ani = (await registry.get(f"/v1/workers/{gone['worker_id']}", headers=OPERATOR)).json()
        assert (ani["full_name"], ani["nik"], ani["passport_number"], ani["phone"]) == (
            "[anonymised]",
            None,
            None,
            None,
        )
        # Budi is abroad again: his worker record and current departure are whole
        budi = await registry.post(
            "/v1/workers/search",
            json={"nik": ABROAD["nik"]},
            params={"unmask": "true"},
            headers={**OPERATOR, "X-Purpose": "retention check"},
        )
        [w] = budi.json()
        assert w["nik"] == ABROAD["nik"] and w["full_name"] == "Budi Rantau"
        current = next(d for d in w["departures"] if d["departure_id"] == away["departure_id"])
        assert current["full_name"] == "Budi Rantau" and current["anonymised_at"] is None

        # statistics still count every departure
        stats = await registry.get(
            "/v1/statistics/departures", params={"by": "province"}, headers=bearer("officer-ani")
        )
        assert stats.json()["total"] == 3

        # the anonymised version reaches intake's projection through the outbox and Kafka
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            projection = client[settings.database("intake")]["departures"]

            async def forgotten() -> bool:
                doc = await projection.find_one({"_id": gone["departure_id"]})
                return bool(doc and doc["full_name"] == "[anonymised]" and doc["nik_hash"] is None)

            await eventually(forgotten)
        finally:
            await client.close()
