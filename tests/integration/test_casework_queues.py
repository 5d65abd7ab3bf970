"""Queues on the real broker and database: concurrent claims, queue order, leases, supervision."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.casework import store
from services.casework.app import create_app
from shared import topics
from shared.clock import ManualClock
from shared.mongo import connect
from shared.settings import Settings
from tests.support.casework import OFFICER, OFFICER2, SUPERVISOR, auth, incident, publish_incident
from tests.support.harness import envelopes, eventually, read_topic, running

pytestmark = pytest.mark.integration

QUEUE = "east_asia-general"


async def _open_cases(settings: Settings, client: Any, incidents: list[Any]) -> list[str]:
    for inc in incidents:
        await publish_incident(settings, inc)

    async def all_there() -> list[str] | None:
        r = await client.get("/v1/cases", params={"queue": QUEUE}, headers=OFFICER)
        ids = [c["case_id"] for c in r.json()]
        return ids if len(ids) == len(incidents) else None

    return await eventually(all_there)  # type: ignore[no-any-return]


async def _listed(client: Any, n: int) -> list[dict[str, Any]]:
    """The queue's listing once it holds n cases (it follows the case events)."""

    async def listing() -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = (await client.get(f"/v1/queues/{QUEUE}/cases", headers=OFFICER)).json()
        return got if len(got) == n else None

    return await eventually(listing)  # type: ignore[no-any-return]


async def test_twenty_concurrent_claims_on_ten_cases_give_each_case_to_one_officer(
    settings: Settings,
) -> None:
    clock = ManualClock()
    async with contextlib.AsyncExitStack() as stack:
        # two replicas of casework on one database: claims race across them
        a = await stack.enter_async_context(running(create_app(settings, clock)))
        b = await stack.enter_async_context(running(create_app(settings, clock)))
        case_ids = await _open_cases(settings, a, [incident() for _ in range(10)])
        officers = ["officer-ani", "officer-budi", "officer-citra"]

        async def claim(i: int) -> tuple[str, Any]:
            client = a if i % 2 else b
            who = officers[i % 3]
            r = await client.post(f"/v1/queues/{QUEUE}/claim-next", headers=auth(who))
            return who, r

        results = await asyncio.gather(*(claim(i) for i in range(20)))
        won = [(who, r.json()) for who, r in results if r.status_code == 200]
        lost = [r for _, r in results if r.status_code != 200]
        assert len(won) == 10
        assert all(r.status_code == 404 for r in lost)
        assert sorted(c["case_id"] for _, c in won) == sorted(case_ids)
        for who, c in won:
            stored = (await a.get(f"/v1/cases/{c['case_id']}", headers=OFFICER)).json()
            assert stored["assignee"] == who
            assert stored["status"] == "assigned"
            assert [e["kind"] for e in stored["timeline"]] == ["opened", "claimed"]
        claimed = [
            e
            for e in envelopes(await read_topic(settings, topics.CASES.name, min_count=20))
            if e["type"].endswith(".claimed.v1")
        ]
        assert sorted(e["data"]["case_id"] for e in claimed) == sorted(case_ids)


async def test_queue_order_is_priority_then_deadline_then_age(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as cw:
        low_old = incident(severity="low")
        critical = incident(severity="critical")
        high = incident(severity="high")
        await _open_cases(settings, cw, [low_old])
        clock.advance(timedelta(minutes=5))
        await _open_cases(settings, cw, [low_old, critical, high])
        order = []
        for _ in range(3):
            r = await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER)
            order.append(r.json()["incident_ids"][0])
        assert order == [critical.incident_id, high.incident_id, low_old.incident_id]
        r = await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER)
        assert r.status_code == 404


async def test_an_expired_claim_returns_to_the_queue(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock, sweep_seconds=0.2)) as cw:
        [case_id] = await _open_cases(settings, cw, [incident()])
        r = await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER)
        assert r.json()["case_id"] == case_id
        clock.advance(timedelta(minutes=29))
        # within its lease the claim stays, whoever sweeps
        r = await cw.post("/v1/queues/release-expired", headers=SUPERVISOR)
        assert r.json() == {"released": 0}
        assert (await cw.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()["status"] == "assigned"

        clock.advance(timedelta(minutes=2))

        async def released() -> dict[str, Any] | None:
            c = (await cw.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
            return c if c["status"] == "new" else None

        case = await eventually(released)
        assert case["assignee"] is None
        assert [e["kind"] for e in case["timeline"]] == ["opened", "claimed", "released"]
        # too late to acknowledge; another officer takes it from the queue
        r = await cw.post(f"/v1/cases/{case_id}/acknowledge", json={}, headers=OFFICER)
        assert r.status_code == 409 and r.json()["current_status"] == "new"
        r = await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER2)
        assert r.json()["case_id"] == case_id and r.json()["assignee"] == "officer-budi"
        types = [e["type"] for e in envelopes(await read_topic(settings, topics.CASES.name, min_count=4))]
        assert [t.split(".")[3] for t in types] == ["opened", "claimed", "released", "claimed"]


async def test_claim_next_takes_an_expired_claim_without_the_sweeper(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock, sweep_seconds=3600)) as cw:
        [case_id] = await _open_cases(settings, cw, [incident()])
        await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER)
        assert (await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER2)).status_code == 404
        clock.advance(timedelta(minutes=31))
        r = await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER2)
        assert r.status_code == 200 and r.json()["case_id"] == case_id
        assert r.json()["assignee"] == "officer-budi"


async def test_supervisor_sees_depth_oldest_and_load_and_reassigns(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as cw:
        first, second, third = incident(), incident(), incident()
        ids = await _open_cases(settings, cw, [first])
        clock.advance(timedelta(minutes=1))
        ids = await _open_cases(settings, cw, [first, second, third])
        # The queues are read from their read model, which follows the case events: wait until it
        # holds all three, else a depth of 2 could be two of three opened, not three less a claim
        # (a loaded CI run read the claimed case as the oldest of "2" that way).
        await _listed(cw, 3)
        claimed = (await cw.post(f"/v1/queues/{QUEUE}/claim-next", headers=OFFICER)).json()

        async def claim_seen() -> dict[str, Any] | None:
            view = (await cw.get("/v1/supervision", headers=SUPERVISOR)).json()
            q = next(q for q in view["queues"] if q["id"] == QUEUE)
            return view if q["depth"] == 2 and q["oldest_case_id"] != claimed["case_id"] else None

        view = await eventually(claim_seen)
        q = next(q for q in view["queues"] if q["id"] == QUEUE)
        assert q["depth"] == 2
        assert q["oldest_case_id"] in ids and q["oldest_case_id"] != claimed["case_id"]
        assert view["officers"] == [
            {"officer": "officer-ani", "assigned": 1, "in_progress": 0, "awaiting_repatriation": 0}
        ]
        r = await cw.post(
            f"/v1/cases/{claimed['case_id']}/reassign",
            json={"assignee": "officer-citra", "reason": "Citra speaks Korean"},
            headers=SUPERVISOR,
        )
        assert r.status_code == 200, r.text
        assert r.json()["assignee"] == "officer-citra"
        assert r.json()["timeline"][-1]["reason"] == "Citra speaks Korean"
        recs = envelopes(await read_topic(settings, topics.CASES.name, min_count=6))
        mine = [e for e in recs if e["data"]["case_id"] == claimed["case_id"]]
        tail = [(e["type"].split(".")[3], e["data"]["assignee"]) for e in mine[-2:]]
        assert tail == [("released", "officer-ani"), ("claimed", "officer-citra")]
        bad = await cw.post(
            f"/v1/cases/{claimed['case_id']}/reassign",
            json={"assignee": "auditor-fajar", "reason": "x"},
            headers=SUPERVISOR,
        )
        assert bad.status_code == 422


async def test_a_queue_lists_its_waiting_cases_in_claim_order_and_a_case_names_the_callers_actions(
    settings: Settings,
) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as client:
        low = incident(severity="low")
        critical = incident(severity="critical")
        await _open_cases(settings, client, [low, critical])
        listed = await _listed(client, 2)
        assert [c["severity"] for c in listed] == ["critical", "low"]
        assert listed[0]["due_at"] < listed[1]["due_at"]
        assert (await client.get("/v1/queues/nowhere/cases", headers=OFFICER)).status_code == 404

        case_id = listed[0]["case_id"]
        seen = (await client.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
        assert seen["actions"] == ["triage", "claim", "notes", "tags", "mission-requests"]
        await client.post(f"/v1/cases/{case_id}/claim", json={}, headers=OFFICER)
        mine = (await client.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
        assert "acknowledge" in mine["actions"] and "claim" not in mine["actions"]
        other = (await client.get(f"/v1/cases/{case_id}", headers=OFFICER2)).json()
        assert "acknowledge" not in other["actions"] and "resolve" not in other["actions"]
        boss = (await client.get(f"/v1/cases/{case_id}", headers=SUPERVISOR)).json()
        assert {"reassign", "release", "priority", "escalate"} <= set(boss["actions"])
        audit = (await client.get(f"/v1/cases/{case_id}", headers=auth("auditor-fajar"))).json()
        assert audit["actions"] == []
        # the queue lists only what waits: the claimed case left it
        left = await _listed(client, 1)
        assert [c["case_id"] for c in left] == [listed[1]["case_id"]]


async def test_a_claim_takes_the_head_of_new_and_triaged_cases_together(settings: Settings) -> None:
    """store.claim_head reads the head of each waiting status alone (an index walk, whatever the
    queue's depth) and takes the first of them: the order is the queue's, across statuses."""
    client = connect(settings)
    try:
        db = client[settings.database("casework")]
        await store.ensure_indexes(db)
        t0 = datetime(2026, 11, 1, tzinfo=UTC)

        def case(cid: str, status: str, priority: int | None, due: int | None, opened: int) -> dict[str, Any]:
            doc: dict[str, Any] = {
                "_id": cid,
                "queue": QUEUE,
                "status": status,
                "opened_at": t0 + timedelta(hours=opened),
            }
            if priority is not None:
                doc["priority"] = priority
            doc["due_at"] = None if due is None else t0 + timedelta(hours=due)
            return doc

        await db[store.CASES].insert_many(
            [
                case("triaged-high-due-later", "triaged", 3, 5, 0),
                case("new-high-due-sooner", "new", 3, 4, 1),
                case("new-high-no-deadline", "new", 3, None, 2),  # no deadline: before any deadline
                case("triaged-critical", "triaged", 4, 9, 3),
                case("new-low", "new", 1, 1, 0),
                case("triaged-no-priority", "triaged", None, 0, 0),  # no priority: last
                case("assigned-critical", "assigned", 4, 0, 0),  # not waiting
                {**case("other-queue", "new", 4, 0, 0), "queue": "elsewhere"},
            ]
        )
        taken = []
        while before := await store.claim_head(
            db, QUEUE, ["new", "triaged"], {"$set": {"status": "assigned"}}
        ):
            taken.append(before["_id"])
        assert taken == [
            "triaged-critical",
            "new-high-no-deadline",
            "new-high-due-sooner",
            "triaged-high-due-later",
            "new-low",
            "triaged-no-priority",
        ]
    finally:
        await client.close()
