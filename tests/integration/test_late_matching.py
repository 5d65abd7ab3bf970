"""Cases follow the person (issue 14), on the real broker and database: an incident accepted before
the worker's departure reached intake is matched when it arrives, and its case takes the match."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from services.escalation.app import create_app as create_escalation
from services.intake.app import create_app as create_intake
from services.registry.app import create_app as create_registry
from shared import topics
from shared.clock import ManualClock
from shared.events.intake import IncidentMatched, MatchMethod, WorkerMatch
from shared.settings import Settings
from tests.support.casework import OFFICER, incident, publish, publish_incident
from tests.support.harness import envelopes, eventually, produce, read_topic, running
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

SEOUL = bearer("kbri-seoul")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MATCHED = "lindungi.intake.incident.matched.v1"
CASE_MATCHED = "lindungi.casework.case.worker-matched.v1"


def report(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "country": "KR",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
        "narrative": "Wages unpaid for three months.",
        "worker": {"passport_number": "C7654321", "full_name": "Siti Rahayu"},
    }
    return {**base, **over}


async def test_an_incident_before_its_departure_is_matched_when_the_departure_arrives(
    settings: Settings,
) -> None:
    clock = ManualClock(NOW)
    async with (
        running(create_registry(settings, clock)) as registry,
        running(create_intake(settings, clock)) as intake,
        running(create_casework(settings, clock)) as cw,
        running(create_escalation(settings, clock, timer_poll_seconds=0.1)),
    ):
        r = await intake.post("/v1/incidents", json=report(), headers=SEOUL)
        assert r.status_code == 202, r.text
        inc = r.json()
        assert inc["non_procedural"] is True and inc["agency_id"] is None

        async def case() -> dict[str, Any] | None:
            found = (
                await cw.get("/v1/cases", params={"incident_id": inc["incident_id"]}, headers=OFFICER)
            ).json()
            return found[0] if found else None

        async def tagged() -> dict[str, Any] | None:  # the default rule tags a non-procedural worker
            c = await case()
            return c if c and "non-procedural" in c["tags"] else None

        opened = await eventually(tagged)
        assert opened["non_procedural"] is True and opened.get("worker_id") is None

        # the worker's departure reaches the registry (and intake) only now
        dep = (
            await registry.post(
                "/v1/departures",
                json=departure(passport_number="C7654321", nik="3171014501940077", agency_id="p3mi-late"),
                headers=OPERATOR,
            )
        ).json()

        async def matched_incident() -> dict[str, Any] | None:
            got = (await intake.get(f"/v1/incidents/{inc['incident_id']}", headers=SEOUL)).json()
            return got if got["match"]["worker_id"] else None

        got = await eventually(matched_incident)
        assert got["match"]["worker_id"] == dep["worker_id"] and got["match"]["method"] == "passport"
        assert (got["non_procedural"], got["agency_id"], got["departure_id"]) == (
            False,
            "p3mi-late",
            dep["departure_id"],
        )

        async def matched_case() -> dict[str, Any] | None:
            c = await case()
            return c if c and c.get("worker_id") else None

        c = await eventually(matched_case)
        assert (c["worker_id"], c["agency_id"], c["home_province"], c["non_procedural"]) == (
            dep["worker_id"],
            "p3mi-late",
            "DKI Jakarta",
            False,
        )
        assert "non-procedural" not in c["tags"]  # no longer true
        full = (await cw.get(f"/v1/cases/{c['case_id']}", headers=OFFICER)).json()
        notes = [t for t in full["timeline"] if t["kind"] == "worker_matched"]
        assert len(notes) == 1 and notes[0]["worker_id"] == dep["worker_id"]

        # the worker's next report, matched at once (keyed by worker id), joins the same case
        r = await intake.post(
            "/v1/incidents",
            json=report(category="contract_mismatch", occurred_at=NOW.isoformat()),
            headers=SEOUL,
        )
        assert r.status_code == 202 and r.json()["worker_key"] == dep["worker_id"], r.text
        nxt = r.json()["incident_id"]

        async def joined() -> dict[str, Any] | None:
            got = (await cw.get(f"/v1/cases/{c['case_id']}", headers=OFFICER)).json()
            return got if nxt in got["incident_ids"] else None

        await eventually(joined)

        # the IncidentMatched event, redelivered, changes nothing more; a later report on the same
        # partition tells when the redelivery was handled
        (matched,) = [
            e
            for e in envelopes(await read_topic(settings, topics.INCIDENTS.name, min_count=2))
            if e["type"] == MATCHED
        ]
        key = inc["worker_key"].encode()
        await produce(settings, topics.INCIDENTS.name, json.dumps(matched).encode(), key=key)
        sentinel = incident(worker_key=inc["worker_key"], category="illness")
        await publish_incident(settings, sentinel)

        async def sentinel_case() -> Any:
            r = await cw.get("/v1/cases", params={"incident_id": sentinel.incident_id}, headers=OFFICER)
            return r.json()

        await eventually(sentinel_case)
        case_events = [
            e
            for e in envelopes(await read_topic(settings, topics.CASES.name, min_count=2))
            if e["type"] == CASE_MATCHED
        ]
        assert len(case_events) == 1
        facts = case_events[0]["data"]
        assert (facts["worker_id"], facts["agency_id"], facts["non_procedural"], facts["home_province"]) == (
            dep["worker_id"],
            "p3mi-late",
            False,
            "DKI Jakarta",
        )
        full = (await cw.get(f"/v1/cases/{c['case_id']}", headers=OFFICER)).json()
        assert len([t for t in full["timeline"] if t["kind"] == "worker_matched"]) == 1

        async def agency_counts() -> Any:
            r = await registry.get("/v1/agencies/p3mi-late", headers=OFFICER)
            return r.status_code == 200 and r.json().get("cases_open") == 1

        await eventually(agency_counts)


async def test_a_late_match_for_a_worker_with_an_open_case_keeps_both_cases(settings: Settings) -> None:
    async with running(create_casework(settings, ManualClock(NOW))) as cw:
        worker = "w-" + uuid.uuid4().hex[:10]
        registered = incident(worker_key=worker, match=WorkerMatch(worker_id=worker, non_procedural=False))
        unmatched = incident(match=WorkerMatch())  # same category family, keyed by a hash
        for inc in (registered, unmatched):
            await publish_incident(settings, inc)

        async def case_of(incident_id: str) -> Any:
            r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
            return r.json()[0] if r.json() else None

        first = await eventually(lambda: case_of(registered.incident_id))
        await eventually(lambda: case_of(unmatched.incident_id))
        late = IncidentMatched(
            incident_id=unmatched.incident_id,
            worker_key=unmatched.worker_key,
            match=WorkerMatch(
                worker_id=worker, method=MatchMethod.PASSPORT, confidence=1.0, non_procedural=False
            ),
            departure_id="d-" + worker,
            agency_id="p3mi-late",
            matched_at=NOW,
        )
        await publish(settings, late, key=unmatched.worker_key)

        async def matched() -> Any:
            c = await case_of(unmatched.incident_id)
            return c if c.get("worker_id") == worker else None

        second = await eventually(matched)
        # the worker's open case keeps the worker's key; the desk merges the two (suggestions, merge)
        assert second["case_id"] != first["case_id"] and second["non_procedural"] is False


async def test_a_late_match_moves_the_report_into_the_workers_link_group(settings: Settings) -> None:
    """After a late match, the worker's next report (by NIK, matched at once, keyed by the worker
    id) is linked to the first report by intake and joins the first report's case."""
    clock = ManualClock(NOW)
    nik = "3171014501940" + str(uuid.uuid4().int)[:3]
    by_nik = {"nik": nik, "full_name": "Siti Rahayu"}
    async with (
        running(create_registry(settings, clock)) as registry,
        running(create_intake(settings, clock)) as intake,
        running(create_casework(settings, clock)) as cw,
    ):
        r = await intake.post("/v1/incidents", json=report(worker=by_nik), headers=SEOUL)
        assert r.status_code == 202, r.text
        first = r.json()
        assert first["non_procedural"] is True
        dep = (
            await registry.post(
                "/v1/departures", json=departure(nik=nik, passport_number=None), headers=OPERATOR
            )
        ).json()

        async def matched() -> Any:
            got = (await intake.get(f"/v1/incidents/{first['incident_id']}", headers=SEOUL)).json()
            return got if got["match"]["worker_id"] else None

        await eventually(matched)
        r = await intake.post(
            "/v1/incidents",
            json=report(worker=by_nik, occurred_at="2026-11-20T14:00:00+09:00", narrative="Still unpaid."),
            headers=SEOUL,
        )
        assert r.status_code == 202, r.text
        second = r.json()
        assert second["worker_key"] == dep["worker_id"]
        assert second["linked_incident_ids"] == [first["incident_id"]]  # intake links the two
        back = (await intake.get(f"/v1/incidents/{first['incident_id']}", headers=SEOUL)).json()
        assert second["incident_id"] in back["linked_incident_ids"]

        async def one_case() -> Any:
            found = (
                await cw.get(
                    "/v1/cases",
                    params={"incident_id": [first["incident_id"], second["incident_id"]]},
                    headers=OFFICER,
                )
            ).json()
            return found if len(found) == 1 and len(found[0]["incident_ids"]) == 2 else None

        (case,) = await eventually(one_case)
        assert case["worker_id"] == dep["worker_id"]


async def test_a_linked_report_joins_the_case_before_its_late_match_reaches_casework(
    settings: Settings,
) -> None:
    """The late match travels on the first report's key, the next report on the worker id's: when
    the next report comes first, it joins the case of the report intake linked it to."""
    async with running(create_casework(settings, ManualClock(NOW))) as cw:
        first = incident(match=WorkerMatch())  # keyed by a hash of the NIK
        await publish_incident(settings, first)

        async def case_of(incident_id: str) -> Any:
            r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
            return r.json()[0] if r.json() else None

        opened = await eventually(lambda: case_of(first.incident_id))
        worker = "w-" + uuid.uuid4().hex[:10]
        nxt = incident(
            worker_key=worker,
            category="contract_mismatch",  # another category of the family: a link says nothing then
            match=WorkerMatch(worker_id=worker, non_procedural=False),
        )
        same = incident(
            worker_key=worker,
            match=WorkerMatch(worker_id=worker, non_procedural=False),
            linked_incident_ids=[first.incident_id],
        )
        await publish_incident(settings, same)
        joined = await eventually(lambda: case_of(same.incident_id))
        assert joined["case_id"] == opened["case_id"]
        assert [e["kind"] for e in joined["timeline"]] == ["opened", "incident_linked"]
        await publish_incident(
            settings, nxt
        )  # keyed by the worker id, linked to nothing: not the hash's case
        apart = await eventually(lambda: case_of(nxt.incident_id))
        assert apart["case_id"] != opened["case_id"]
