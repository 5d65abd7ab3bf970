"""No NIK or passport number in clear: not in either service's MongoDB documents, logs or events."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared import topics
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.intake import IncidentReport, IncidentSubmitted
from shared.settings import Settings
from tests.support.harness import eventually, produce, read_topic, running
from tests.support.registry_data import OPERATOR, SAMPLE_CSV, bearer, departure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NIK, PASSPORT = "3171234509870001", "C7654321"
UNREGISTERED_NIK, UNREGISTERED_PASSPORT = "3201987654320002", "B1239876"
# every identifier that crosses either service in this test (the sample import included)
SECRETS = [NIK, PASSPORT, UNREGISTERED_NIK, UNREGISTERED_PASSPORT]
SECRETS += [row.split(",")[0] for row in SAMPLE_CSV.read_text().splitlines()[1:] if row.split(",")[0]]
SECRETS += [row.split(",")[1] for row in SAMPLE_CSV.read_text().splitlines()[1:] if row.split(",")[1]]


async def dump_databases(settings: Settings) -> str:
    """Every document of both services' databases, as text."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    out = []
    try:
        for service in ("registry", "intake"):
            db = client[settings.database(service)]
            for name in await db.list_collection_names():
                for doc in await db[name].find({}).to_list():
                    out.append(json.dumps(doc, default=str))
    finally:
        await client.close()
    return "\n".join(out)


class Capture(logging.Handler):
    """Every record any logger emits, unformatted (before the JSON formatter's own masking)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_no_identifier_in_clear_in_documents_logs_or_events(settings: Settings) -> None:
    clock = ManualClock(NOW)
    apps = registry_app(settings, clock), intake_app(settings, clock)
    root, capture = logging.getLogger(), Capture()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)  # after the apps configured logging, so debug records are seen too
    try:
        events = await exercise(settings, *apps)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)

    stored = await dump_databases(settings)
    assert "nik_enc" in stored and "passport_hash" in stored  # the documents are there, encrypted
    published = "\n".join(r.value.decode() for r in events)
    formatter = logging.Formatter()
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__} {formatter.formatException(r.exc_info) if r.exc_info else ''}"
        for r in capture.records
    )
    assert len(capture.records) > 10
    for secret in SECRETS:
        assert secret not in stored, f"{secret[:4]}... in clear in a MongoDB document"
        assert secret not in published, f"{secret[:4]}... in clear in an event"
        assert secret not in logged, f"{secret[:4]}... in clear in a log record"


async def exercise(settings: Settings, registry_service: Any, intake_service: Any) -> list[Any]:
    """Record departures (HTTP and import), report incidents (HTTP, a refused one, the Kafka door)."""
    async with running(registry_service) as registry, running(intake_service) as intake:
        r = await registry.post(
            "/v1/departures", json=departure(nik=NIK, passport_number=PASSPORT), headers=OPERATOR
        )
        assert r.status_code == 201
        imported = await registry.post("/v1/imports", content=SAMPLE_CSV.read_bytes(), headers=OPERATOR)
        assert imported.json()["created"] == 5
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            projection = client[settings.database("intake")]["departures"]

            async def projected() -> bool:
                return await projection.count_documents({}) == 6

            await eventually(projected)
        finally:
            await client.close()

        seoul = bearer("kbri-seoul")
        matched = await intake.post(
            "/v1/incidents",
            json={
                "country": "KR",
                "category": "documents_withheld",
                "severity": "high",
                "occurred_at": "2026-11-20T09:30:00+09:00",
                # a mission pasting identifiers into free text: scrubbed before storing
                "narrative": f"Employer holds passport {PASSPORT}; NIK {NIK}.",
                "worker": {"nik": NIK, "passport_number": PASSPORT, "full_name": "Siti Rahayu"},
            },
            headers=seoul,
        )
        assert matched.status_code == 202 and matched.json()["match"]["method"] == "nik"
        bad = await intake.post(
            "/v1/incidents",
            json={
                "country": "KR",
                "category": "illness",
                "severity": "low",
                "occurred_at": "2026-11-20T09:30:00+09:00",
                "worker": {"nik": NIK + "9", "passport_number": "Z" + PASSPORT},
            },
            headers=seoul,
        )
        assert bad.status_code == 422
        assert NIK not in bad.text and PASSPORT not in bad.text
        report = IncidentReport.model_validate(
            {
                "country": "KR",
                "category": "illness",
                "severity": "medium",
                "occurred_at": "2026-11-19T09:30:00+09:00",
                "worker": {"nik": UNREGISTERED_NIK, "passport_number": UNREGISTERED_PASSPORT},
            }
        )
        msg = IncidentSubmitted(mission_id="kbri-seoul", report=report)
        env = Envelope(
            id="sub-1",
            source="t",
            type=msg.type,
            subject="kbri-seoul",
            time=NOW,
            data=msg.model_dump(mode="json"),
        )
        await produce(
            settings, topics.INCIDENT_SUBMISSIONS.name, env.model_dump_json().encode(), key=b"kbri-seoul"
        )

        async def both() -> bool:
            listed = (await intake.get("/v1/incidents", headers=seoul)).json()
            return len(listed) == 2

        await eventually(both)
        worker = await registry.post("/v1/workers/search", json={"nik": NIK}, headers=bearer("officer-ani"))
        assert worker.json()[0]["nik"] == "************0001"
        events = await read_topic(settings, topics.DEPARTURES.name, min_count=6)
        events += await read_topic(settings, topics.INCIDENTS.name, min_count=2)
    return events
