"""casework on the real broker and database: incidents become cases, joins, redeliveries, group cases."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.casework import changes, desk, placement
from services.casework.app import create_app
from services.casework.domain import Action
from shared import topics
from shared.clock import ManualClock
from shared.errors import Conflict
from shared.settings import Settings
from tests.support.casework import MISSION, OFFICER, auth, incident, publish_incident
from tests.support.harness import envelopes, eventually, read_topic, running

pytestmark = pytest.mark.integration


async def _case_of(client, incident_id: str):  # type: ignore[no-untyped-def]
    r = await client.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
    assert r.status_code == 200, r.text
    found = r.json()
    return found[0] if found else None


async def test_incident_opens_a_case_and_a_second_one_joins_it(settings: Settings) -> None:
    clock = ManualClock()
    async with running(create_app(settings, clock)) as cw:
        first = incident(severity="medium")
        env = await publish_incident(settings, first)
        case = await eventually(lambda: _case_of(cw, first.incident_id))
        assert case["status"] == "new"
        assert case["queue"] == "east_asia-general"
        assert case["family"] == "wages_contract"
        assert case["due_at"].startswith("2026-01-06T08:00")  # medium: acknowledge within a day

        # same worker, same family (contract), higher severity: joins, and raises the priority
        second = incident(worker_key=first.worker_key, category="contract_mismatch", severity="critical")
        await publish_incident(settings, second)
        joined = await eventually(lambda: _case_of(cw, second.incident_id))
        assert joined["case_id"] == case["case_id"]
        assert joined["incident_ids"] == [first.incident_id, second.incident_id]
        assert joined["priority"] > case["priority"]
        assert joined["severity"] == "critical"
        assert joined["due_at"].startswith("2026-01-05T09:00")  # the graver incident's nearer deadline
        assert [e["kind"] for e in joined["timeline"]] == ["opened", "incident_linked"]

        # same worker, another family: its own case
        other = incident(worker_key=first.worker_key, category="physical_abuse")
        await publish_incident(settings, other)
        own = await eventually(lambda: _case_of(cw, other.incident_id))
        assert own["case_id"] != case["case_id"]

        # a redelivery of the first envelope changes nothing
        await publish_incident(settings, first, id=env.id)
        await publish_incident(settings, second)  # same incident, new envelope id: still once
        recs = envelopes(await read_topic(settings, topics.CASES.name, min_count=3))
        types = sorted(e["type"].split(".")[3] for e in recs)
        assert types == ["merged", "opened", "opened"], types
        got = (await cw.get(f"/v1/cases/{case['case_id']}", headers=OFFICER)).json()
        assert got["incident_ids"] == [first.incident_id, second.incident_id]
        assert len(got["timeline"]) == 2


async def test_evacuation_opens_a_group_case_and_missions_see_only_status(settings: Settings) -> None:
    async with running(create_app(settings, ManualClock())) as cw:
        evac = incident(category="evacuation", severity="critical", people_affected=40)
        await publish_incident(settings, evac)
        case = await eventually(lambda: _case_of(cw, evac.incident_id))
        assert case["group"] is True
        assert case["people_affected"] == 40
        assert case["priority"] >= 7

        await cw.post(
            f"/v1/cases/{case['case_id']}/notes", json={"text": "internal"}, headers=auth("officer-ani")
        )
        seen = (await cw.get(f"/v1/cases/{case['case_id']}", headers=MISSION)).json()
        assert seen["status"] == "new"
        assert "timeline" not in seen and "internal" not in str(seen)
        # another jurisdiction does not see it
        r = await cw.get(f"/v1/cases/{case['case_id']}", headers=auth("kbri-riyadh"))
        assert r.status_code == 404
        assert (await cw.get("/v1/cases", headers=auth("kbri-riyadh"))).json() == []


async def test_after_resolution_a_new_incident_opens_a_new_case_and_reopen_is_refused(
    settings: Settings,
) -> None:
    app = create_app(settings, ManualClock())
    async with running(app) as cw:
        first = incident()
        await publish_incident(settings, first)
        case = await eventually(lambda: _case_of(cw, first.incident_id))
        cid = case["case_id"]
        for path, body, who in [
            ("claim", {}, OFFICER),
            ("acknowledge", {}, OFFICER),
            ("resolve", {"resolution": "paid"}, OFFICER),
        ]:
            r = await cw.post(f"/v1/cases/{cid}/{path}", json=body, headers=who)
            assert r.status_code == 200, r.text

        later = incident(worker_key=first.worker_key)
        await publish_incident(settings, later)
        new = await eventually(lambda: _case_of(cw, later.incident_id))
        assert new["case_id"] != cid and new["status"] == "new"

        # the old case cannot come back while the new one holds the worker's incidents
        r = await cw.post(f"/v1/cases/{cid}/reopen", json={"reason": "x"}, headers=auth("supervisor-dewi"))
        assert r.status_code == 409
        assert r.json()["current_status"] == "resolved"
        # and if two reopens race past that check, the unique open key refuses the second write
        rt = app.state.runtime
        now = rt.clock.now()
        with pytest.raises(Conflict):
            await changes.change(
                rt,
                cid,
                lambda d: desk.desk_update(
                    d,
                    Action.REOPEN,
                    actor="supervisor-dewi",
                    roles=frozenset({"supervisor"}),
                    now=now,
                    reason="x",
                ),
            )
        got = (await cw.get(f"/v1/cases/{cid}", headers=OFFICER)).json()
        assert got["status"] == "resolved" and got["timeline"][-1]["kind"] == "resolved"


async def test_two_replicas_placing_one_workers_incidents_at_once_open_one_case(settings: Settings) -> None:
    # A consumer-group rebalance can hand one partition to two replicas for a moment: both
    # place incidents of the same worker at once. The unique open key keeps it to one case.
    a_app, b_app = create_app(settings, ManualClock()), create_app(settings, ManualClock())
    async with running(a_app) as cw, running(b_app):
        worker = uuid.uuid4().hex[:32]
        incs = [incident(worker_key=worker, category=c) for c in ("unpaid_wages", "contract_mismatch")] * 3
        incs = [incident(worker_key=worker, category=i.category) for i in incs]  # six distinct incidents
        rts = [a_app.state.runtime, b_app.state.runtime]
        placed = await asyncio.gather(
            *(
                placement.on_incident(rts[i % 2], event_id=uuid.uuid4().hex, incident=inc)
                for i, inc in enumerate(incs)
            )
        )
        assert len(set(placed)) == 1
        r = await cw.get("/v1/cases", params={"worker_key": worker}, headers=OFFICER)
        [case] = r.json()
        assert sorted(case["incident_ids"]) == sorted(i.incident_id for i in incs)
        assert [e["kind"] for e in case["timeline"]].count("incident_linked") == 5
