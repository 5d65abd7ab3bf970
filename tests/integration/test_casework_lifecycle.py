"""A case's whole life on the real broker and database: transitions, 409s, listeners, the timeline."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.casework.app import create_app
from shared import topics
from shared.clock import ManualClock
from shared.events.escalation import EscalationAction
from shared.events.repatriation import StepChanged, WorkflowChanged
from shared.settings import Settings
from tests.support.casework import MISSION, OFFICER, OFFICER2, SUPERVISOR, incident, publish, publish_incident
from tests.support.harness import envelopes, eventually, read_topic, running

pytestmark = pytest.mark.integration


async def _open(settings: Settings, cw: Any, **over: Any) -> dict[str, Any]:
    inc = incident(**over)
    await publish_incident(settings, inc)

    async def found() -> dict[str, Any] | None:
        r = (await cw.get("/v1/cases", params={"incident_id": inc.incident_id}, headers=OFFICER)).json()
        return r[0] if r else None

    return await eventually(found)  # type: ignore[no-any-return]


async def _until(cw: Any, case_id: str, pred) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async def check() -> dict[str, Any] | None:
        c = (await cw.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()
        return c if pred(c) else None

    return await eventually(check)  # type: ignore[no-any-return]


def _escalation(case_id: str, kind: str, **over: Any) -> EscalationAction:
    clock = ManualClock()
    fields: dict[str, Any] = {
        "action_id": uuid.uuid4().hex,
        "rule_id": "trafficking-always",
        "rule_version": 1,
        "kind": kind,
        "case_id": case_id,
        "subject_id": case_id,
        "reason": "trafficking indicators",
        "fired_at": clock.now(),
    }
    fields.update(over)
    return EscalationAction(**fields)


async def test_the_timeline_of_a_whole_lifecycle_lists_every_step_in_order(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as cw:
        case = await _open(settings, cw)
        cid = case["case_id"]

        async def step(
            path: str, body: dict[str, Any], headers: dict[str, str], code: int = 200
        ) -> dict[str, Any]:
            clock.advance(timedelta(minutes=10))
            r = await cw.post(f"/v1/cases/{cid}/{path}", json=body, headers=headers)
            assert r.status_code == code, r.text
            return r.json()  # type: ignore[no-any-return]

        await step("triage", {"reason": "wages unpaid 3 months"}, OFFICER)
        await step("claim", {}, OFFICER)
        await step("acknowledge", {}, OFFICER)
        await step("notes", {"text": "called the employer"}, OFFICER)

        esc = _escalation(cid, "escalate", level=2)
        env = await publish(settings, esc, key=cid)
        await _until(cw, cid, lambda c: c["escalation_level"] == 2)
        await publish(settings, esc, key=cid, id=env.id)  # redelivered: applied once

        sent = await step("mission-requests", {"text": "please visit the worker"}, OFFICER, code=201)
        rid = sent["request_id"]
        # the mission's inbox is casework's API: its cases, each with the desk's requests
        inbox = (await cw.get("/v1/cases", headers=MISSION)).json()
        [asked] = [r for c in inbox for r in c.get("requests", []) if r["request_id"] == rid]
        assert asked["status"] == "open" and asked["text"] == "please visit the worker"
        clock.advance(timedelta(minutes=10))
        r = await cw.post(
            f"/v1/cases/{cid}/mission-requests/{rid}/answer", json={"text": "visited"}, headers=MISSION
        )
        assert r.status_code == 200, r.text
        assert r.json()["requests"][0]["answer"] == "visited"
        assert "timeline" not in r.json()

        repat = uuid.uuid4().hex
        wf = WorkflowChanged(
            repatriation_id=repat,
            case_id=cid,
            kind="living",
            status="started",
            actor="rule:x",
            at=clock.now(),
        )
        await publish(settings, wf, key=repat)
        await _until(cw, cid, lambda c: c["status"] == "awaiting_repatriation")
        st = StepChanged(
            repatriation_id=repat,
            case_id=cid,
            kind="living",
            step="exit_permit",
            status="done",
            owner="mission",
            actor="kbri-seoul",
            at=clock.now(),
        )
        await publish(settings, st, key=repat)
        await _until(cw, cid, lambda c: c["timeline"][-1]["kind"] == "repatriation_step")

        await step("resolve", {"resolution": "wages paid, worker home"}, OFFICER)
        await step("close", {"reason": "done"}, SUPERVISOR)
        final = await step("reopen", {"reason": "employer stopped payment"}, SUPERVISOR)

        kinds = [e["kind"] for e in final["timeline"]]
        assert kinds == [
            "opened",
            "triaged",
            "claimed",
            "acknowledged",
            "note",
            "escalated",
            "mission_request",
            "mission_answer",
            "repatriation_started",
            "repatriation_step",
            "resolved",
            "closed",
            "reopened",
        ]
        ats = [e["at"] for e in final["timeline"]]
        assert ats == sorted(ats)
        assert all(e["by"] for e in final["timeline"])
        for stamp in (
            "triaged_at",
            "assigned_at",
            "acknowledged_at",
            "awaiting_repatriation_at",
            "resolved_at",
            "closed_at",
        ):
            assert final[stamp], stamp
        assert final["status"] == "triaged" and final["assignee"] is None
        assert final["mission_requests"][0]["status"] == "answered"

        recs = envelopes(await read_topic(settings, topics.CASES.name, min_count=10))
        assert [e["type"].split(".")[3] for e in recs] == [
            "opened",
            "triaged",
            "claimed",
            "acknowledged",
            "escalated",
            "awaiting-repatriation",
            "resolved",
            "closed",
            "reopened",
        ]
        # requests to missions are no events: nothing on the wire would consume them
        assert not any("mission-request" in e["type"] for e in recs)


async def test_wrong_transitions_are_refused_with_409_and_the_current_state(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        cid = (await _open(settings, cw))["case_id"]

        async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
            return await cw.post(f"/v1/cases/{cid}/{path}", json=body, headers=headers)

        for path, body, who in [
            ("acknowledge", {}, OFFICER),
            ("resolve", {"resolution": "x"}, OFFICER),
            ("close", {"reason": "x"}, SUPERVISOR),
            ("reopen", {"reason": "x"}, SUPERVISOR),
            ("release", {}, OFFICER),
            ("awaiting-repatriation", {}, OFFICER),
        ]:
            r = await post(path, body, who)
            assert r.status_code == 409, (path, r.text)
            assert r.json()["current_status"] == "new"

        assert (await post("claim", {}, OFFICER)).status_code == 200
        r = await post("triage", {}, OFFICER)
        assert r.status_code == 409 and r.json()["current_status"] == "assigned"
        r = await post("claim", {}, OFFICER2)
        assert r.status_code == 409
        # acknowledging someone else's claim is not a matter of state but of who
        assert (await post("acknowledge", {}, OFFICER2)).status_code == 403
        assert (await post("acknowledge", {}, OFFICER)).status_code == 200
        r = await post("acknowledge", {}, OFFICER)
        assert r.status_code == 409 and r.json()["current_status"] == "in_progress"
        # nothing half-stored: the refused actions left no trace
        case = (await cw.get(f"/v1/cases/{cid}", headers=OFFICER)).json()
        assert [e["kind"] for e in case["timeline"]] == ["opened", "claimed", "acknowledged"]
        # bad input is 422 field by field
        r = await post("priority", {"priority": 99}, SUPERVISOR)
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"priority", "reason"}


async def test_escalation_actions_tag_notify_and_open_an_investigation(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        case = await _open(settings, cw, category="trafficking", severity="critical", agency_id="agency-7")
        cid = case["case_id"]
        assert case["queue"] == "east_asia-trafficking"
        await publish(settings, _escalation(cid, "tag", tag="tppo"), key=cid)
        await publish(settings, _escalation(cid, "notify", notify="supervisor"), key=cid)
        await publish(settings, _escalation(cid, "refer", partner="satgas-tppo"), key=cid)
        opener = _escalation(cid, "open_case", subject_kind="agency", subject_id="agency-7")
        env = await publish(settings, opener, key="agency-7")
        await publish(settings, opener, key="agency-7", id=env.id)
        got = await _until(cw, cid, lambda c: len(c["timeline"]) == 4)
        assert [e["kind"] for e in got["timeline"]] == ["opened", "tagged", "notified", "referred"]
        assert got["tags"] == ["tppo"]

        async def investigations() -> list[Any]:
            return [
                c for c in (await cw.get("/v1/cases", headers=OFFICER)).json() if c["kind"] == "investigation"
            ]

        found = await eventually(investigations)
        assert len(found) == 1
        assert found[0]["source_case_id"] == cid and found[0]["agency_id"] == "agency-7"


async def test_only_the_mission_asked_answers_and_only_once(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        cid = (await _open(settings, cw))["case_id"]
        r = await cw.post(
            f"/v1/cases/{cid}/mission-requests", json={"text": "employer address?"}, headers=OFFICER
        )
        assert r.status_code == 201, r.text
        rid = r.json()["request_id"]
        second = await cw.post(f"/v1/cases/{cid}/mission-requests", json={"text": "phone?"}, headers=OFFICER)
        rid2 = second.json()["request_id"]
        # The desk may name another mission, if it serves the case's country.
        elsewhere = {"text": "visit?", "mission_id": "kbri-tokyo"}
        wrong = await cw.post(f"/v1/cases/{cid}/mission-requests", json=elsewhere, headers=OFFICER)
        assert wrong.status_code == 422 and "mission_id" in wrong.text

        async def inbox(headers: dict[str, str], **params: str) -> list[str]:
            r = await cw.get("/v1/mission-requests", params=params, headers=headers)
            assert r.status_code == 200, r.text
            return [c["case_id"] for c in r.json()]

        tokyo = {"authorization": "Bearer dev-kbri-tokyo"}
        assert await inbox(MISSION) == [cid] and await inbox(tokyo) == []
        assert await inbox(OFFICER, mission_id="kbri-seoul") == [cid]
        url = f"/v1/cases/{cid}/mission-requests/{rid}/answer"
        other = await cw.post(url, json={"text": "?"}, headers=tokyo)
        assert other.status_code == 404
        assert (await cw.post(url, json={"text": "Jl. 1"}, headers=MISSION)).status_code == 200
        again = await cw.post(url, json={"text": "Jl. 2"}, headers=MISSION)
        assert again.status_code == 409
        assert await inbox(MISSION) == [cid]  # one request still open
        url2 = f"/v1/cases/{cid}/mission-requests/{rid2}/answer"
        assert (await cw.post(url2, json={"text": "+82"}, headers=MISSION)).status_code == 200
        assert await inbox(MISSION) == []  # nothing left to answer
        case = (await cw.get(f"/v1/cases/{cid}", headers=OFFICER)).json()
        assert {r["request_id"]: r.get("answer") for r in case["mission_requests"]} == {
            rid: "Jl. 1",
            rid2: "+82",
        }
        kinds = [e["kind"] for e in case["timeline"]]
        assert kinds == ["opened", "mission_request", "mission_request", "mission_answer", "mission_answer"]


async def test_repatriation_events_reach_the_timeline_once_and_move_only_allowed_states(
    settings: Settings,
) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as cw:
        cid = (await _open(settings, cw))["case_id"]
        repat = uuid.uuid4().hex
        started = WorkflowChanged(
            repatriation_id=repat,
            case_id=cid,
            kind="remains",
            status="started",
            actor="rule:death",
            at=clock.now(),
        )
        env = await publish(settings, started, key=repat)
        await publish(settings, started, key=repat, id=env.id)  # redelivered
        none = WorkflowChanged(
            repatriation_id=repat, kind="evacuation", status="started", actor="x", at=clock.now()
        )
        await publish(settings, none, key=repat)  # no case: nothing to do
        done = WorkflowChanged(
            repatriation_id=repat, case_id=cid, kind="remains", status="completed", actor="x", at=clock.now()
        )
        await publish(settings, done, key=repat)
        case = await _until(cw, cid, lambda c: c["timeline"][-1]["kind"] == "repatriation_completed")
        # a new case is not in progress: the start shows on the timeline, the status stays
        assert case["status"] == "new"
        assert [e["kind"] for e in case["timeline"]] == [
            "opened",
            "repatriation_started",
            "repatriation_completed",
        ]


async def test_a_request_goes_to_the_mission_the_desk_names_in_the_case_jurisdiction(
    settings: Settings,
) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        cid = (await _open(settings, cw, country="JP", mission_id="kbri-tokyo"))["case_id"]
        url = f"/v1/cases/{cid}/mission-requests"
        r = await cw.post(
            url, json={"text": "the worker is in Osaka now", "mission_id": "kjri-osaka"}, headers=OFFICER
        )
        assert r.status_code == 201, r.text
        tokyo, osaka = {"authorization": "Bearer dev-kbri-tokyo"}, {"authorization": "Bearer dev-kjri-osaka"}

        async def inbox(who: dict[str, str]) -> list[str]:
            return [c["case_id"] for c in (await cw.get("/v1/mission-requests", headers=who)).json()]

        assert await inbox(osaka) == [cid] and await inbox(tokyo) == []
        rid = r.json()["request_id"]
        answer = f"{url}/{rid}/answer"
        assert (await cw.post(answer, json={"text": "?"}, headers=tokyo)).status_code == 404
        assert (await cw.post(answer, json={"text": "visited"}, headers=osaka)).status_code == 200
        default = await cw.post(url, json={"text": "and the employer?"}, headers=OFFICER)
        assert (
            default.json()["case"]["mission_requests"][-1]["mission_id"] == "kbri-tokyo"
        )  # the reporting one
