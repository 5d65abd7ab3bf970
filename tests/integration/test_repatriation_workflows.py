"""Repatriation workflows on the real broker and database: living, remains, duplicates, restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.repatriation import store
from services.repatriation.app import create_app
from services.repatriation.store import WORKFLOWS
from shared.clock import ManualClock
from shared.events.casework import CaseStatus, CaseWorkerMatched
from shared.events.registry import DepartureStatus
from shared.events.repatriation import RepatriationKind, RepatriationRequested
from shared.settings import Settings
from shared.topics import CASES, DEPARTURES, REPATRIATION_REQUESTS, REPATRIATIONS
from tests.support.harness import envelopes, eventually, read_topic, running
from tests.support.repatriation import auth, departure, envelope_bytes, produce_many

pytestmark = pytest.mark.integration

DESK, SUPERVISOR = auth("officer-ani"), auth("supervisor-dewi")
KL, SEOUL = auth("kbri-kuala-lumpur"), auth("kbri-seoul")
CGK, DKI = auth("debarkation-cgk"), auth("region-dki")
BOOKING = {"flight": "GA821", "arrival_at": "2026-01-20T14:00:00+07:00", "debarkation_point": "CGK"}


@pytest.fixture(autouse=True)
async def known_cases(settings: Settings) -> None:
    """The cases these tests name, as repatriation learns them from casework's CaseOpened."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        for n in range(1, 6):
            await store.record_case(
                client[settings.database("repatriation")], case_id=f"case-{n}", country="MY", opened_at=None
            )
    finally:
        await client.close()


def living(case_id: str, **over: Any) -> dict[str, Any]:
    return {
        "kind": "living",
        "case_id": case_id,
        "worker_id": "w-000001",
        "worker_name": "Siti Rahayu",
        "country": "MY",
        "home_province": "DKI Jakarta",
        "home_regency": "Jakarta Timur",
        "facts": {"passport_missing": True, "sick": False},
        "reason": "wages unpaid; wants to go home",
        **over,
    }


async def step(
    c: httpx.AsyncClient, rid: str, name: str, action: str, who: dict[str, str], **body: Any
) -> Any:
    r = await c.post(f"/v1/repatriations/{rid}/steps/{name}/{action}", json=body, headers=who)
    assert r.status_code == 200, r.text
    return r.json()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def steps_of(doc: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in doc["steps"]}


async def step_events(settings: Settings, rid: str, last: str, count: int = 1) -> list[dict[str, Any]]:
    """The workflow's distinct events on the topic, once the one with status `last` has come out last.

    Delivery is at least once: the relay may send an event twice (a broker error or a stop
    between sending and clearing), always with the same id and body, and consumers drop the
    repeat by id. So events count by id; a repeat that differs in anything fails the test.
    """

    async def read() -> list[dict[str, Any]]:
        recs = await read_topic(settings, REPATRIATIONS.name, min_count=1, timeout=5)
        seen: dict[str, dict[str, Any]] = {}
        mine = []
        for e in envelopes(recs):
            if e["data"]["repatriation_id"] != rid:
                continue
            if e["id"] in seen:
                assert e == seen[e["id"]], "one event id published with two bodies"
                continue
            seen[e["id"]] = e
            mine.append(e)
        return mine if len(mine) >= count and mine[-1]["data"]["status"] == last else []

    return await eventually(read, timeout=30)


async def test_living_worker_end_to_end_with_skip_retry_reroute(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as c:
        r = await c.post("/v1/repatriations", json=living("case-1"), headers=DESK)
        assert r.status_code == 201, r.text
        wf = r.json()
        rid = wf["repatriation_id"]
        assert wf["current_step"] == "travel_document"
        assert when(wf["steps"][1]["due_at"]) == clock.now() + timedelta(hours=72)
        # What each reader may do on the current step, and what completing it needs.
        assert wf["actions"] == []  # the desk neither completes a mission's step nor skips an unskippable one
        assert wf["current_step_needs"] == {"evidence": True, "requires": {"document": ["passport", "splp"]}}
        r = await c.get(f"/v1/repatriations/{rid}", headers=KL)
        assert r.json()["actions"] == ["complete", "fail"]

        # Only the host country's mission completes the mission's steps; others do not even see it.
        r = await c.post(f"/v1/repatriations/{rid}/steps/travel_document/complete", json={}, headers=SEOUL)
        assert r.status_code == 404
        r = await c.post(f"/v1/repatriations/{rid}/steps/travel_document/complete", json={}, headers=DESK)
        assert r.status_code == 403
        # Passport missing: an SPLP and its reference are required.
        r = await c.post(
            f"/v1/repatriations/{rid}/steps/travel_document/complete",
            json={"data": {"document": "passport"}},
            headers=KL,
        )
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"evidence", "data.document"}
        # Not the current step: 409 with the state.
        r = await c.post(f"/v1/repatriations/{rid}/steps/departed/complete", json={}, headers=KL)
        assert r.status_code == 409
        assert r.json()["current_step"] == "travel_document"

        clock.advance(timedelta(hours=10))
        await step(
            c,
            rid,
            "travel_document",
            "complete",
            KL,
            evidence=["SPLP/KL/2026/0001"],
            data={"document": "splp"},
        )
        doc = await step(
            c,
            rid,
            "exit_clearance",
            "complete",
            KL,
            evidence=["IMM-EXIT-77"],
            data={"employer_release": True, "wages_settled": True, "immigration": True},
        )
        assert steps_of(doc)["fit_to_travel"] == "skipped"  # not sick: not applicable
        await step(
            c, rid, "funding_approved", "complete", SUPERVISOR, data={"payer": "agency", "recoverable": True}
        )

        # A failed booking, retried.
        doc = await step(c, rid, "travel_booked", "fail", KL, reason="airline refused the SPLP")
        assert steps_of(doc)["travel_booked"] == "failed"
        clock.advance(timedelta(hours=2))
        doc = await step(c, rid, "travel_booked", "retry", KL, reason="other airline")
        tb = next(s for s in doc["steps"] if s["name"] == "travel_booked")
        assert tb["status"] == "active" and tb["attempts"] == 2
        assert when(tb["due_at"]) == clock.now() + timedelta(hours=72)
        doc = await step(c, rid, "travel_booked", "complete", KL, evidence=["PNR-ABC123"], data=BOOKING)
        # Who may re-route or cancel now, as each reader is told (the console shows just those).
        assert doc["workflow_actions"] == {"cancel": True, "reroute_to": ["travel_booked"]}
        for who, may in ((DESK, True), (DKI, False)):
            seen = (await c.get(f"/v1/repatriations/{rid}", headers=who)).json()["workflow_actions"]
            assert seen == (
                {"cancel": True, "reroute_to": ["travel_booked"]}
                if may
                else {"cancel": False, "reroute_to": []}
            )

        # Flight cancelled: re-route back to booking; the first booking is released, funding stays.
        r = await c.post(
            f"/v1/repatriations/{rid}/reroute",
            json={"to_step": "travel_booked", "reason": "flight cancelled"},
            headers=KL,
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["current_step"] == "travel_booked"
        assert [(e["kind"], e["released_at"] is not None) for e in doc["effects"]] == [
            ("funding", False),
            ("booking", True),
        ]
        await step(
            c,
            rid,
            "travel_booked",
            "complete",
            KL,
            evidence=["PNR-XYZ789"],
            data={**BOOKING, "flight": "GA825"},
        )

        # The region sees who is arriving, when and where.
        r = await c.get("/v1/region/returns", headers=DKI)
        assert r.status_code == 200
        arriving = r.json()["arriving"]
        assert [(a["repatriation_id"], a["flight"], a["debarkation_point"]) for a in arriving] == [
            (rid, "GA825", "CGK")
        ]

        doc = await step(c, rid, "departed", "complete", KL)
        assert doc["workflow_actions"] == {"cancel": False, "reroute_to": []}  # past the point of no return
        r = await c.post(f"/v1/repatriations/{rid}/cancel", json={"reason": "too late"}, headers=DESK)
        assert r.status_code == 409  # past the point of no return

        # Registry records the return: the arrival step completes by event.
        await produce_many(
            settings,
            DEPARTURES.name,
            [
                (
                    b"w-000001",
                    envelope_bytes(departure(1, status=DepartureStatus.RETURNED, version=3), key="w-000001"),
                )
            ],
        )

        async def arrived() -> bool:
            d = (await c.get(f"/v1/repatriations/{rid}", headers=DESK)).json()
            return steps_of(d)["arrived"] == "done"

        await eventually(arrived)
        await step(
            c, rid, "onward_transport", "skip", CGK, reason="family collected the worker at the airport"
        )

        r = await c.get("/v1/region/returns", headers=DKI)
        assert [a["repatriation_id"] for a in r.json()["awaiting_witness"]] == [rid]
        r = await c.post(f"/v1/repatriations/{rid}/steps/handed_over/complete", json={}, headers=CGK)
        assert r.status_code == 403  # the region's step
        await step(
            c,
            rid,
            "handed_over",
            "complete",
            DKI,
            evidence=["BAST/DKI/2026/014"],
            data={"received_by": "family", "witness": "Lurah Cakung Barat"},
        )
        doc = await step(c, rid, "region_notified", "complete", CGK, evidence=["letter 12/2026"])
        assert doc["status"] == "completed"
        assert doc["current_step"] is None
        ho = next(s for s in doc["steps"] if s["name"] == "handed_over")
        assert ho["actor"] == "region-dki" and ho["evidence"] == ["BAST/DKI/2026/014"]
        kinds = [(t["scope"], t["status"], t.get("step")) for t in doc["timeline"]]
        assert ("step", "undone", "travel_booked") in kinds and kinds[-1] == ("workflow", "completed", None)

        events = await step_events(settings, rid, last="completed")
        types = [(e["data"]["status"], e["data"].get("step")) for e in events]
        assert types[0] == ("started", None)
        assert ("retried", "travel_booked") in types
        assert ("undone", "travel_booked") in types
        assert ("rerouted", None) in types
        assert ("skipped", "onward_transport") in types
        assert types[-1] == ("completed", None)
        actives = [e["data"] for e in events if e["data"]["status"] == "active"]
        assert actives and all(a["due_at"] for a in actives)
        undone = next(
            e["data"]
            for e in events
            if e["data"]["status"] == "undone" and e["data"]["step"] == "travel_booked"
        )
        assert undone["effect"] == "booking released"


async def test_cancellation_undoes_funding_and_booking_and_frees_the_case(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as c:
        r = await c.post("/v1/repatriations", json=living("case-2", country="KR"), headers=KL)
        assert r.status_code == 403  # a mission starts only in its own jurisdiction
        r = await c.post("/v1/repatriations", json=living("case-2", facts={"sick": True}), headers=KL)
        assert r.status_code == 201, r.text
        rid = r.json()["repatriation_id"]
        # One case, one live living workflow.
        r = await c.post("/v1/repatriations", json=living("case-2"), headers=DESK)
        assert r.status_code == 409 and r.json()["repatriation_id"] == rid

        await step(c, rid, "travel_document", "complete", KL, evidence=["SPLP-9"], data={"document": "splp"})
        await step(
            c,
            rid,
            "exit_clearance",
            "complete",
            KL,
            evidence=["IMM-1"],
            data={"employer_release": True, "wages_settled": False, "immigration": True},
        )
        await step(c, rid, "fit_to_travel", "complete", KL, evidence=["MED-CERT-5"])
        await step(c, rid, "funding_approved", "complete", DESK, data={"payer": "state", "recoverable": True})
        await step(c, rid, "travel_booked", "complete", KL, evidence=["PNR-1"], data=BOOKING)

        r = await c.post(
            f"/v1/repatriations/{rid}/cancel", json={"reason": "the worker chose to stay"}, headers=DESK
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["status"] == "cancelled" and doc["cancel_reason"] == "the worker chose to stay"
        assert all(e["released_at"] for e in doc["effects"]) and len(doc["effects"]) == 2
        assert steps_of(doc)["travel_booked"] == "undone" and steps_of(doc)["funding_approved"] == "undone"
        assert steps_of(doc)["departed"] == "cancelled"

        events = await step_events(settings, rid, last="cancelled")
        undone = [(e["data"]["step"], e["data"]["effect"]) for e in events if e["data"]["status"] == "undone"]
        assert undone == [("travel_booked", "booking released"), ("funding_approved", "funding returned")]
        assert events[-1]["data"]["status"] == "cancelled"

        r = await c.post(f"/v1/repatriations/{rid}/steps/departed/complete", json={}, headers=KL)
        assert r.status_code == 409
        # The case may have a new living workflow now.
        r = await c.post("/v1/repatriations", json=living("case-2"), headers=DESK)
        assert r.status_code == 201 and r.json()["repatriation_id"] != rid


async def test_remains_end_to_end_via_hub(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as c:
        body = {
            "kind": "remains",
            "case_id": "case-3",
            "worker_id": "w-000002",
            "country": "MY",
            "home_province": "DKI Jakarta",
            "facts": {"via_hub": True},
            "reason": "death reported by the employer",
        }
        r = await c.post("/v1/repatriations", json=body, headers=KL)
        assert r.status_code == 201, r.text
        rid = r.json()["repatriation_id"]
        assert r.json()["current_step"] == "death_certificate_and_documents"
        await step(
            c, rid, "death_certificate_and_documents", "complete", KL, evidence=["DC-MY-771", "EMB-LTR-3"]
        )
        await step(c, rid, "cargo_booked", "fail", KL, reason="cargo space unavailable")
        await step(c, rid, "cargo_booked", "retry", DESK, reason="desk found space with another carrier")
        await step(c, rid, "cargo_booked", "complete", KL, evidence=["AWB-126-1234"], data=BOOKING)
        await step(c, rid, "arrived_cargo_terminal", "complete", CGK, evidence=["CGK-CARGO-88"])
        doc = await step(c, rid, "onward_domestic_leg", "skip", DESK, reason="the family collected at CGK")
        assert doc["current_step"] == "transported_home"
        await step(c, rid, "transported_home", "complete", DKI, evidence=["AMB-DKI-5"])
        doc = await step(
            c,
            rid,
            "handed_over",
            "complete",
            DKI,
            evidence=["BAST-77"],
            data={"received_by": "family", "witness": "Kepala Desa"},
        )
        assert doc["status"] == "completed"
        cargo = next(s for s in doc["steps"] if s["name"] == "cargo_booked")
        assert cargo["attempts"] == 2 and cargo["evidence"] == ["AWB-126-1234"]
        events = await step_events(settings, rid, last="completed")
        assert [e["data"]["status"] for e in events if e["data"].get("step") == "cargo_booked"] == [
            "active",
            "failed",
            "retried",
            "active",
            "done",
        ]


async def test_the_same_request_delivered_twice_gives_one_workflow(settings: Settings) -> None:
    request = RepatriationRequested(
        request_id="rule-r7-case-4",
        kind=RepatriationKind.LIVING,
        case_id="case-4",
        worker_id="w-000004",
        country="MY",
        requested_by="rule",
        reason="no answer from employer within 14 days",
        requested_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    again = request.model_copy(update={"request_id": "desk-case-4", "requested_by": "desk"})
    value = envelope_bytes(request, key="case-4", id="evt-1")
    async with running(create_app(settings, ManualClock())) as c:
        await produce_many(
            settings,
            REPATRIATION_REQUESTS.name,
            [(b"case-4", value), (b"case-4", value), (b"case-4", envelope_bytes(again, key="case-4"))],
        )

        async def listed() -> list[Any]:
            got = (await c.get("/v1/repatriations", params={"case_id": "case-4"}, headers=DESK)).json()
            if not got:
                return []
            doc = (await c.get(f"/v1/repatriations/{got[0]['repatriation_id']}", headers=DESK)).json()
            joined = [t for t in doc["timeline"] if t["status"] == "request_joined"]
            return got if joined else []

        got = await eventually(listed)
        assert len(got) == 1
        rid = got[0]["repatriation_id"]
        assert got[0]["requested_by"] == "rule"
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            n = await client[settings.database("repatriation")][WORKFLOWS].count_documents(
                {"case_id": "case-4"}
            )
        finally:
            await client.close()
        assert n == 1
        events = await step_events(settings, rid, last="active", count=3)
        assert [e["data"]["status"] for e in events if e["type"].endswith("workflow.changed.v1")] == [
            "started"
        ]


async def test_a_workflow_started_before_its_worker_was_known_learns_the_home_later(
    settings: Settings,
) -> None:
    """A rule's request can outrun the departure (or the case's match): the workflow starts with
    no home, no region may act on it, and it learns the home when the departure or match arrives."""

    def remains(case_id: str, worker_id: str | None) -> bytes:
        request = RepatriationRequested(
            request_id=f"rule-death-remains-{case_id}",
            kind=RepatriationKind.REMAINS,
            case_id=case_id,
            worker_id=worker_id,
            country="MY",
            requested_by="rule",
            reason="a death was reported",
            requested_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        return envelope_bytes(request, key=case_id)

    async def started(case_id: str) -> dict[str, Any]:
        async def one() -> list[Any]:
            return (await c.get("/v1/repatriations", params={"case_id": case_id}, headers=DESK)).json()

        rid = (await eventually(one))[0]["repatriation_id"]
        return (await c.get(f"/v1/repatriations/{rid}", headers=DESK)).json()  # type: ignore[no-any-return]

    async def home_of(rid: str) -> str | None:
        doc = (await c.get(f"/v1/repatriations/{rid}", headers=DESK)).json()
        return doc["home_province"]  # type: ignore[no-any-return]

    async with running(create_app(settings, ManualClock())) as c:
        await produce_many(settings, REPATRIATION_REQUESTS.name, [(b"case-1", remains("case-1", "w-000007"))])
        await produce_many(settings, REPATRIATION_REQUESTS.name, [(b"case-2", remains("case-2", None))])
        first, second = await started("case-1"), await started("case-2")
        for doc in (first, second):
            assert doc["home_province"] is None
            r = await c.get(f"/v1/repatriations/{doc['repatriation_id']}", headers=DKI)
            assert r.status_code == 404  # no region sees a workflow whose home is unknown

        # The departure reaches repatriation after the request: the first learns its home.
        await produce_many(
            settings,
            DEPARTURES.name,
            [(b"w-000007", envelope_bytes(departure(7, province="DKI Jakarta", version=2), key="w-000007"))],
        )
        rid = first["repatriation_id"]
        await eventually(lambda: home_of(rid))
        doc = (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).json()
        assert (doc["home_province"], doc["worker_id"]) == ("DKI Jakarta", "w-000007")
        learnt = [t for t in doc["timeline"] if t["status"] == "home_province_set"]
        assert [(t["actor"], t["reason"]) for t in learnt] == [
            ("registry", "unknown -> DKI Jakarta: learnt from departure d-w-000007 v2")
        ]

        # The second names no worker: casework's late match of the case tells it who and where.
        matched = CaseWorkerMatched(
            case_id="case-2",
            status=CaseStatus.NEW,
            actor="system",
            worker_id="w-000008",
            home_province="DKI Jakarta",
            departure_id="d-w-000008",
            at=datetime(2026, 1, 5, 1, tzinfo=UTC),
        )
        await produce_many(settings, CASES.name, [(b"case-2", envelope_bytes(matched, key="case-2"))])
        rid = second["repatriation_id"]
        await eventually(lambda: home_of(rid))
        doc = (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).json()
        assert (doc["home_province"], doc["worker_id"]) == ("DKI Jakarta", "w-000008")
        assert [t["actor"] for t in doc["timeline"] if t["status"] == "home_province_set"] == ["casework"]
        events = await step_events(settings, rid, last="home_province_set", count=2)
        assert events[-1]["data"]["home_province"] == "DKI Jakarta"

        # The match can also come first, the rule's request (naming no worker) after it: the
        # workflow starts knowing its home from the case.
        early = matched.model_copy(update={"case_id": "case-3", "worker_id": "w-000009"})
        await produce_many(settings, CASES.name, [(b"case-3", envelope_bytes(early, key="case-3"))])
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            cases = client[settings.database("repatriation")][store.CASES]

            async def kept() -> bool:
                return bool((await cases.find_one({"_id": "case-3"}) or {}).get("worker_id"))

            await eventually(kept)
        finally:
            await client.close()
        await produce_many(settings, REPATRIATION_REQUESTS.name, [(b"case-3", remains("case-3", None))])
        rid = (await started("case-3"))["repatriation_id"]
        await eventually(lambda: home_of(rid))
        doc = (await c.get(f"/v1/repatriations/{rid}", headers=DKI)).json()
        assert (doc["home_province"], doc["worker_id"]) == ("DKI Jakarta", "w-000009")


async def test_a_restart_in_the_middle_resumes_where_it_stood(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as c:
        r = await c.post("/v1/repatriations", json=living("case-5"), headers=DESK)
        rid = r.json()["repatriation_id"]
        await step(c, rid, "travel_document", "complete", KL, evidence=["SPLP-5"], data={"document": "splp"})
        await step(c, rid, "exit_clearance", "fail", KL, reason="immigration hold")
        before = (await c.get(f"/v1/repatriations/{rid}", headers=DESK)).json()
    # A new process on the same settings: nothing in memory survives, everything in MongoDB does.
    async with running(create_app(settings, clock)) as c2:
        after = (await c2.get(f"/v1/repatriations/{rid}", headers=DESK)).json()
        assert after["steps"] == before["steps"] and after["current_step"] == "exit_clearance"
        await step(c2, rid, "exit_clearance", "retry", KL, reason="hold lifted")
        doc = await step(
            c2,
            rid,
            "exit_clearance",
            "complete",
            KL,
            evidence=["IMM-2"],
            data={"employer_release": True, "wages_settled": True, "immigration": True},
        )
        assert doc["current_step"] == "funding_approved"
        events = await step_events(settings, rid, last="active", count=10)
        assert [e["data"]["status"] for e in events if e["data"].get("step") == "exit_clearance"] == [
            "active",
            "failed",
            "retried",
            "active",
            "done",
        ]
        assert [e["data"]["status"] for e in events].count("started") == 1


async def test_a_repatriation_for_no_case_or_an_unknown_region_is_refused_at_the_door(
    settings: Settings,
) -> None:
    from shared.envelope import Envelope
    from shared.events.casework import CaseOpened
    from shared.topics import CASES
    from tests.support.harness import produce

    async with running(create_app(settings, ManualClock())) as c:
        r = await c.post("/v1/repatriations", json=living("no-such-case"), headers=DESK)
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "case_id"
        r = await c.post(
            "/v1/evacuations",
            json={"country": "LB", "region": "atlantis", "reason": "armed conflict"},
            headers=DESK,
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region"
        # Once casework opens the case, repatriation learns it from the topic and starts.
        opened = CaseOpened(
            case_id="case-new",
            incident_id="i-new",
            worker_key="w-000001",
            mission_id="kbri-kuala-lumpur",
            country="MY",
            category="unpaid_wages",
            severity="high",
            priority=5,
            opened_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        env = Envelope.wrap(opened, source="lindungi/casework", subject="case-new", clock=ManualClock())
        await produce(settings, CASES.name, env.model_dump_json().encode(), key=b"case-new")

        async def started() -> int:
            r = await c.post("/v1/repatriations", json=living("case-new"), headers=DESK)
            return r.status_code if r.status_code != 404 else 0

        assert await eventually(started, timeout=30) == 201
