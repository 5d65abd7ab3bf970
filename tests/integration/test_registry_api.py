"""registry on the real broker and database: import, departures, statistics, flags, roles."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime

import pytest

from services.registry.app import create_app as registry_app
from shared import topics
from shared.envelope import Envelope
from shared.events.escalation import FlagRequested
from shared.settings import Settings
from tests.support.harness import envelopes, eventually, produce, read_topic, running
from tests.support.registry_data import OFFICER, OPERATOR, REGION_DKI, ROOT, SAMPLE_CSV, departure

pytestmark = pytest.mark.integration

RECORDED = "lindungi.registry.departure.recorded.v1"


async def test_import_keeps_good_rows_reports_bad_ones_and_never_duplicates(settings: Settings) -> None:
    csv = SAMPLE_CSV.read_bytes()
    async with running(registry_app(settings)) as registry:
        r = await registry.post("/v1/imports", content=csv, headers={**OPERATOR, "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        report = r.json()
        assert (report["rows"], report["created"], report["rejected"]) == (8, 5, 3)
        by_line = {e["line"]: e["reason"] for e in report["errors"]}
        assert set(by_line) == {7, 8, 9}
        assert by_line[7].startswith("nik:")
        assert by_line[8].startswith("home_province:")
        assert by_line[9].startswith("destination_country:")

        again = (await registry.post("/v1/imports", content=csv, headers=OPERATOR)).json()
        assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 5, 3)
        listed = (await registry.get("/v1/departures", headers=OFFICER)).json()
        assert len(listed) == 5

        # one DepartureRecorded per departure, version 1, hashes only
        events = [
            e
            for e in envelopes(await read_topic(settings, topics.DEPARTURES.name, min_count=5))
            if e["type"] == RECORDED
        ]
        assert sorted(e["data"]["departure_id"] for e in events) == sorted(d["departure_id"] for d in listed)
        assert {e["data"]["version"] for e in events} == {1}
        assert all(e["data"]["nik_hash"] and "nik" not in e["data"] for e in events)

        stats = (
            await registry.get("/v1/statistics/departures", params={"by": "sector"}, headers=OFFICER)
        ).json()
        assert stats["total"] == 5
        assert {g["key"]: g["count"] for g in stats["groups"]} == {
            "welding": 2,
            "hospitality": 1,
            "engineering": 1,
            "domestic_work": 1,
        }
        region = (
            await registry.get("/v1/statistics/departures", params={"by": "province"}, headers=REGION_DKI)
        ).json()
        assert region["groups"] == [{"key": "DKI Jakarta", "count": 3}]
        months = (
            await registry.get(
                "/v1/statistics/departures", params={"by": "month", "sector": "welding"}, headers=OFFICER
            )
        ).json()
        assert months["groups"] == [{"key": "2026-02", "count": 1}, {"key": "2026-04", "count": 1}]
        refused = await registry.get(
            "/v1/statistics/departures", params={"province": "Jawa Barat"}, headers=REGION_DKI
        )
        assert refused.status_code == 403
        assert (await registry.get("/v1/departures", headers=REGION_DKI)).status_code == 403


async def test_lindungi_import_reports_bad_rows_and_its_events_go_out(settings: Settings) -> None:
    env = {
        **os.environ,
        "MONGODB_URI": settings.mongodb_uri,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.cli",
        "import",
        str(SAMPLE_CSV),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    stdout, stderr = out.decode(), err.decode()
    assert proc.returncode == 1, stderr
    assert "8 rows: 5 created, 0 updated, 0 unchanged, 3 rejected" in stdout
    assert re.search(r"\b7\s*│\s*nik:", stdout), stdout  # the rejected rows' table: line, reason
    assert "8/8" in stderr  # the progress bar reached the end
    # The outbox entries the command left are published by a registry replica's relay.
    async with running(registry_app(settings)):
        events = await read_topic(settings, topics.DEPARTURES.name, min_count=5)
        assert len({e["data"]["departure_id"] for e in envelopes(events)}) == 5


async def test_departure_changes_are_versioned_and_transitions_checked(settings: Settings) -> None:
    async with running(registry_app(settings)) as registry:
        r = await registry.post("/v1/departures", json=departure(status="registered"), headers=OPERATOR)
        assert r.status_code == 201, r.text
        dep = r.json()
        assert dep["version"] == 1 and "nik" not in dep
        again = await registry.post("/v1/departures", json=departure(status="registered"), headers=OPERATOR)
        assert again.status_code == 409
        assert again.json()["current"]["departure_id"] == dep["departure_id"]

        moved = await registry.patch(
            f"/v1/departures/{dep['departure_id']}", json={"status": "departed"}, headers=OPERATOR
        )
        assert moved.status_code == 200 and moved.json()["version"] == 2
        back = await registry.patch(
            f"/v1/departures/{dep['departure_id']}", json={"status": "registered"}, headers=OPERATOR
        )
        assert back.status_code == 409
        assert back.json()["current"]["status"] == "departed"
        same = await registry.patch(
            f"/v1/departures/{dep['departure_id']}", json={"status": "departed"}, headers=OPERATOR
        )
        assert same.json()["version"] == 2  # nothing changed, nothing published

        events = envelopes(await read_topic(settings, topics.DEPARTURES.name, min_count=2))
        assert [(e["data"]["version"], e["data"]["change"]) for e in events] == [
            (1, "registered"),
            (2, "departed"),
        ]
        assert {e["subject"] for e in events} == {dep["worker_id"]}

        found = (
            await registry.post("/v1/workers/search", json={"passport_number": "c 1234567"}, headers=OFFICER)
        ).json()
        assert [w["worker_id"] for w in found] == [dep["worker_id"]]
        assert found[0]["nik"] == "************0001"  # masked for readers
        masked = (await registry.get(f"/v1/workers/{dep['worker_id']}", headers=OPERATOR)).json()
        assert masked["nik"] == "************0001"  # an operator too, unless asking
        full = (
            await registry.get(
                f"/v1/workers/{dep['worker_id']}",
                params={"unmask": "true"},
                headers={**OPERATOR, "X-Purpose": "correcting the record"},
            )
        ).json()
        assert full["nik"] == "3171014501940001" and len(full["departures"]) == 1


async def test_roles_and_credentials_are_checked(settings: Settings) -> None:
    async with running(registry_app(settings)) as registry:
        assert (await registry.post("/v1/departures", json=departure())).status_code == 401
        bad = await registry.post(
            "/v1/departures", json=departure(), headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
        refused = await registry.post("/v1/departures", json=departure(), headers=OFFICER)
        assert refused.status_code == 403 and "registry_operator" in refused.json()["errors"][0]["reason"]
        invalid = await registry.post(
            "/v1/departures",
            json=departure(nik="1", destination_country="XX", skill_level="expert"),
            headers=OPERATOR,
        )
        assert invalid.status_code == 422
        assert {e["field"] for e in invalid.json()["errors"]} == {"nik", "destination_country", "skill_level"}


async def test_flag_requests_flag_the_agency_once(settings: Settings) -> None:
    cmd = FlagRequested(
        action_id="act-1",
        subject_kind="agency",
        subject_id="p3mi-bina-karya",
        rule_id="rule-agency-repeat",
        reason="3 abuse cases in 30 days",
        requested_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    app = registry_app(settings)
    handled: list[str] = []

    async def seen(env: Envelope) -> None:
        handled.append(env.id)

    app.state.runtime.after_handle.append(seen)
    async with running(app) as registry:
        await registry.put(
            "/v1/agencies/p3mi-bina-karya",
            json={"name": "PT Bina Karya", "licence": "KEP.123/PPTKIS/2024"},
            headers=OPERATOR,
        )
        for event_id in ("e1", "e2"):  # the same action delivered twice (a replay upstream)
            env = Envelope(
                id=event_id,
                source="test",
                type=cmd.type,
                subject=cmd.subject_id,
                time=cmd.requested_at,
                data=cmd.model_dump(mode="json"),
            )
            await produce(
                settings,
                topics.REGISTRY_COMMANDS.name,
                env.model_dump_json().encode(),
                key=b"p3mi-bina-karya",
            )

        async def flagged():
            got = (await registry.get("/v1/agencies/p3mi-bina-karya", headers=OFFICER)).json()
            return got if got.get("flagged") else None

        await eventually(flagged)

        async def both_handled() -> bool:
            return {"e1", "e2"} <= set(handled)

        await eventually(both_handled)
        agency = (await registry.get("/v1/agencies/p3mi-bina-karya", headers=OFFICER)).json()
        assert agency["name"] == "PT Bina Karya"
        assert [f["action_id"] for f in agency["flags"]] == ["act-1"]
        listed = (await registry.get("/v1/agencies", params={"flagged": "true"}, headers=OFFICER)).json()
        assert [a["id"] for a in listed] == ["p3mi-bina-karya"]
