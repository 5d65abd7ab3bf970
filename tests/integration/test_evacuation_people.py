"""Evacuations count people (issue 14), on the real broker and database: the people a mission reports
in the area join the list and its progress, registered or not, and the evacuation completes by
itself once every worker is home, safe or confirmed unaccounted by a supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.repatriation import store
from services.repatriation.app import create_app
from shared.clock import ManualClock
from shared.events.intake import IncidentAccepted, IncidentMatched, MatchMethod, WorkerMatch
from shared.settings import Settings
from shared.vocab import Category, Severity
from tests.support.casework import publish
from tests.support.harness import eventually, running
from tests.support.repatriation import auth, departure

pytestmark = pytest.mark.integration

DESK, KL, SUPERVISOR = auth("officer-ani"), auth("kbri-kuala-lumpur"), auth("supervisor-dewi")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    yield client[settings.database("repatriation")]
    await client.close()


def reported(name: str, **over: Any) -> IncidentAccepted:
    fields: dict[str, Any] = {
        "incident_id": "i-" + name,
        "worker_key": "wk-" + name,
        "worker_name": name,
        "mission_id": "kbri-kuala-lumpur",
        "country": "MY",
        "category": Category.EVACUATION,
        "severity": Severity.HIGH,
        "occurred_at": NOW,
        "reported_at": NOW,
        "match": WorkerMatch(),  # no departure record
        **over,
    }
    return IncidentAccepted(**fields)


async def test_evacuation_counts_reported_people_and_completes_when_all_are_accounted_for(
    settings: Settings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running(create_app(settings, ManualClock(NOW))) as c:
        await store.record_departures(db, [departure(i, prefix="ev") for i in range(2)])
        r = await c.post("/v1/evacuations", json={"country": "MY", "reason": "flooding"}, headers=DESK)
        assert r.status_code == 201, r.text
        eid = r.json()["repatriation_id"]
        assert r.json()["fanout"]["count"] == 2

        # a mission reports a worker with no departure record, and one already listed; a group
        # report and a report from another country add nobody
        for inc in [
            reported("Wati"),
            reported(
                "listed",
                worker_key="ev-000000",
                match=WorkerMatch(worker_id="ev-000000", non_procedural=False),
            ),
            reported("group", worker_key="group-x", worker_name=None, people_affected=40),
            reported("kr", country="KR", mission_id="kbri-seoul"),
        ]:
            await publish(settings, inc, key=inc.worker_key)

        async def progress(**want: Any) -> dict[str, Any] | None:
            got = (await c.get(f"/v1/evacuations/{eid}/progress", headers=KL)).json()
            return got if all(got.get(k) == v for k, v in want.items()) else None

        async def all_reports_applied() -> dict[str, Any] | None:
            # the four reports have different keys, so they may be handled in any order: wait
            # for the listed worker's too (located), not only for Wati's (total and non-procedural)
            p = await progress(total=3, non_procedural=1)
            return p if p and p["by_status"].get("located") == 2 else None

        p = await eventually(all_reports_applied)
        # the listed worker the mission reported is found: located, no longer unaccounted
        assert p["by_status"]["located"] == 2 and p["by_status"]["unaccounted"] == 1
        workers = (await c.get(f"/v1/evacuations/{eid}/workers", headers=KL)).json()
        (np,) = [w for w in workers if w.get("non_procedural")]
        assert (np["worker_id"], np["full_name"], np["incident_id"], np["registered"]) == (
            "wk-Wati",
            "Wati",
            "i-Wati",
            False,
        )

        async def move(ids: list[str], status: str, who: dict[str, str], **kw: Any) -> Any:
            return await c.post(
                f"/v1/evacuations/{eid}/workers/status",
                json={"worker_ids": ids, "status": status, **kw},
                headers=who,
            )

        assert (await move(["ev-000000"], "located", KL)).json()["moved"] == 0  # it is already
        assert (await move(["ev-000000", "wk-Wati"], "safe", KL)).json()["moved"] == 2
        # one worker is still unaccounted: the evacuation goes on
        assert await progress(status="active", confirmed_unaccounted=0)
        refused = await move(["ev-000001"], "unaccounted", DESK, confirmed=True)
        assert refused.status_code == 403, refused.text
        wrong = await move(["ev-000001"], "safe", SUPERVISOR, confirmed=True)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "confirmed"
        assert (await move(["ev-000001"], "unaccounted", SUPERVISOR, confirmed=True)).json()["moved"] == 1

        wf = (await c.get(f"/v1/repatriations/{eid}", headers=DESK)).json()
        assert wf["status"] == "completed"
        assert await progress(status="completed", confirmed_unaccounted=1, total=3)
        done = [t for t in wf["timeline"] if t.get("status") == "completed" and t.get("scope") == "workflow"]
        assert len(done) == 1


async def test_a_report_finds_an_unaccounted_worker_and_keeps_a_safe_one_safe(
    settings: Settings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running(create_app(settings, ManualClock(NOW))) as c:
        await store.record_departures(db, [departure(i, prefix="rk") for i in range(2)])
        r = await c.post("/v1/evacuations", json={"country": "MY", "reason": "flooding"}, headers=DESK)
        eid = r.json()["repatriation_id"]
        registered = {
            "match": WorkerMatch(worker_id="rk-000000", non_procedural=False),
            "worker_key": "rk-000000",
        }
        safe = await c.post(
            f"/v1/evacuations/{eid}/workers/status",
            json={"worker_ids": ["rk-000001"], "status": "safe"},
            headers=KL,
        )
        assert safe.json()["moved"] == 1
        for inc in [
            reported("found", **registered),
            reported(
                "again",
                match=WorkerMatch(worker_id="rk-000001", non_procedural=False),
                worker_key="rk-000001",
            ),
        ]:
            await publish(settings, inc, key=inc.worker_key)

        async def noted(worker_id: str, incident_id: str) -> dict[str, Any] | None:
            doc = await store.get_evacuee(db, eid, worker_id)
            return (
                doc
                if doc and any(h.get("incident_id") == incident_id for h in doc.get("history", []))
                else None
            )

        found = await eventually(lambda: noted("rk-000000", "i-found"))
        assert (found["status"], found["reported_by"]) == ("located", "kbri-kuala-lumpur")
        kept = await eventually(lambda: noted("rk-000001", "i-again"))
        assert kept["status"] == "safe" and kept["history"][-1]["note"].endswith("status kept")
        again = reported(
            "again", match=WorkerMatch(worker_id="rk-000001", non_procedural=False), worker_key="rk-000001"
        )
        await publish(settings, again, key=again.worker_key)  # redelivered: noted once
        await publish(settings, reported("sentinel", country="MY"), key="wk-sentinel")
        await eventually(lambda: store.get_evacuee(db, eid, "wk-sentinel"))
        doc = await store.get_evacuee(db, eid, "rk-000001")
        assert doc is not None and [h.get("incident_id") for h in doc["history"]].count("i-again") == 1


async def test_a_reported_person_matched_late_becomes_the_registered_worker_on_the_list(
    settings: Settings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running(create_app(settings, ManualClock(NOW))) as c:
        await store.record_departures(db, [departure(i, prefix="lm") for i in range(2)])
        r = await c.post("/v1/evacuations", json={"country": "MY", "reason": "flooding"}, headers=DESK)
        eid = r.json()["repatriation_id"]
        wati, ani = reported("Wati"), reported("Ani")
        for inc in (wati, ani):
            await publish(settings, inc, key=inc.worker_key)

        async def workers(want: int) -> list[dict[str, Any]] | None:
            got = (await c.get(f"/v1/evacuations/{eid}/workers", headers=KL)).json()
            return got if len(got) == want else None

        await eventually(lambda: workers(4))

        def matched(inc: IncidentAccepted, worker_id: str) -> IncidentMatched:
            return IncidentMatched(
                incident_id=inc.incident_id,
                worker_key=inc.worker_key,
                match=WorkerMatch(
                    worker_id=worker_id, method=MatchMethod.NIK, confidence=1.0, non_procedural=False
                ),
                departure_id="d-" + worker_id,
                matched_at=NOW,
                country="MY",
                category=Category.EVACUATION,
            )

        # Wati's departure was not in the area's listing (it arrived late); Ani was listed
        # (unaccounted) by the fan-out: one person, one line
        for m in (matched(wati, "lm-wati"), matched(ani, "lm-000001")):
            await publish(settings, m, key=m.worker_key)

        async def replaced() -> list[dict[str, Any]] | None:
            got = await workers(3)
            return got if got and not any(w["worker_id"].startswith("wk-") for w in got) else None

        got = {w["worker_id"]: w for w in await eventually(replaced)}
        assert set(got) == {"lm-000000", "lm-000001", "lm-wati"}
        w = got["lm-wati"]
        assert (w["registered"], w["non_procedural"], w["status"], w["full_name"], w["incident_id"]) == (
            True,
            False,
            "located",
            "Wati",
            "i-Wati",
        )
        a = got["lm-000001"]
        assert (a["registered"], a["status"], a["incident_id"]) == (True, "located", "i-Ani")
        p = (await c.get(f"/v1/evacuations/{eid}/progress", headers=KL)).json()
        assert (p["total"], p["non_procedural"], p["by_status"]["located"]) == (3, 0, 2)
