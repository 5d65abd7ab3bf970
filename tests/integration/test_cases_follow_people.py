"""Cases follow the person, on the real broker and database: agency counts include closures, group
reports are not non-procedural, a death changes the registry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from services.escalation import store as escalation_store
from services.escalation.app import create_app as create_escalation
from services.registry.app import create_app as create_registry
from shared import topics
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.casework import CaseOpened
from shared.events.intake import WorkerMatch
from shared.settings import Settings
from shared.vocab import Category, Severity
from tests.support.casework import OFFICER, SUPERVISOR, incident, publish, publish_incident
from tests.support.escalation import T0
from tests.support.harness import envelopes, eventually, read_topic, running
from tests.support.registry_data import OPERATOR, departure

pytestmark = pytest.mark.integration


async def holds(check: Callable[[], Any]) -> Any:
    return check()


async def case_of(cw, incident_id: str) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
    return r.json()[0] if r.json() else None


async def test_agency_counts_include_closures_so_open_cases_per_agency_are_true(settings: Settings) -> None:
    clock = ManualClock(T0)
    agency = "p3mi-" + uuid.uuid4().hex[:6]
    async with (
        running(create_casework(settings, clock)) as cw,
        running(create_registry(settings, clock)) as reg,
    ):
        reports = [incident(agency_id=agency), incident(agency_id=agency)]
        for r in reports:
            await publish_incident(settings, r)
        cids = [(await eventually(lambda r=r: case_of(cw, r.incident_id)))["case_id"] for r in reports]

        async def agency_doc(**want: int) -> dict | None:  # type: ignore[type-arg]
            r = await reg.get(f"/v1/agencies/{agency}", headers=OFFICER)
            doc = r.json() if r.status_code == 200 else {}
            return doc if all(doc.get(k) == v for k, v in want.items()) else None

        await eventually(lambda: agency_doc(cases_opened=2, cases_open=2, cases_closed=0))
        for path, body, who in [
            ("claim", {}, OFFICER),
            ("acknowledge", {}, OFFICER),
            ("resolve", {"resolution": "wages paid"}, OFFICER),
            ("close", {"reason": "done"}, SUPERVISOR),
        ]:
            r = await cw.post(f"/v1/cases/{cids[0]}/{path}", json=body, headers=who)
            assert r.status_code == 200, r.text
        # resolved, then closed: one closure, and one case still open
        await eventually(lambda: agency_doc(cases_opened=2, cases_open=1, cases_closed=1))
        closing = [
            e
            for e in envelopes(await read_topic(settings, topics.CASES.name, min_count=6))
            if e["type"].split(".")[3] in ("resolved", "closed")
        ]
        assert [e["data"]["agency_id"] for e in closing] == [agency, agency]
        r = await cw.post(
            f"/v1/cases/{cids[0]}/reopen", json={"reason": "employer stopped paying"}, headers=SUPERVISOR
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: agency_doc(cases_opened=2, cases_open=2, cases_closed=1))


async def test_a_group_report_is_not_one_non_procedural_worker(settings: Settings) -> None:
    clock = ManualClock(T0)
    escalation = create_escalation(settings, clock, timer_poll_seconds=0.1)
    handled: list[str] = []

    async def seen(env: Envelope) -> None:
        handled.append(env.type)

    escalation.state.runtime.after_handle.append(seen)
    async with running(create_casework(settings, clock)) as cw, running(escalation):
        # an evacuation for 40 people, no one named: intake matched no departure record
        evac = incident(
            category="evacuation",
            severity="critical",
            people_affected=40,
            worker_name=None,
            match=WorkerMatch(),
        )
        assert evac.match.non_procedural
        single = incident(category="unpaid_wages", match=WorkerMatch())  # one unregistered worker
        await publish_incident(settings, evac)
        await publish_incident(settings, single)
        group_case = await eventually(lambda: case_of(cw, evac.incident_id))
        single_case = await eventually(lambda: case_of(cw, single.incident_id))
        assert group_case["group"] is True and group_case["non_procedural"] is False
        assert single_case["non_procedural"] is True
        await eventually(lambda: holds(lambda: handled.count(CaseOpened.type) >= 2))

        decided = (
            await escalation.state.runtime.db[escalation_store.DECIDED]
            .find({"rule_id": "non-procedural"})
            .to_list()
        )
        assert [d["subject"] for d in decided] == [f"case:{single_case['case_id']}"]

        async def tagged() -> dict | None:  # type: ignore[type-arg]
            doc = (await cw.get(f"/v1/cases/{single_case['case_id']}", headers=OFFICER)).json()
            return doc if "non-procedural" in doc["tags"] else None

        await eventually(tagged)
        doc = (await cw.get(f"/v1/cases/{group_case['case_id']}", headers=OFFICER)).json()
        assert "non-procedural" not in doc["tags"]


async def test_a_reported_death_sets_the_workers_departure_to_deceased(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with running(create_registry(settings, clock)) as reg:
        r = await reg.post(
            "/v1/departures",
            json=departure(
                nik="3171014501940" + uuid.uuid4().hex[:3].translate(str.maketrans("abcdef", "123456"))
            ),
            headers=OPERATOR,
        )
        assert r.status_code == 201, r.text
        dep = r.json()
        assert dep["status"] == "departed"
        death = CaseOpened(
            case_id=uuid.uuid4().hex,
            incident_id=uuid.uuid4().hex,
            worker_key=dep["worker_id"],
            worker_id=dep["worker_id"],
            mission_id="kbri-seoul",
            country="KR",
            category=Category.DEATH,
            severity=Severity.CRITICAL,
            priority=9,
            opened_at=T0,
        )
        env = await publish(settings, death, key=death.case_id)
        await publish(settings, death, key=death.case_id, id=env.id)  # delivered twice

        async def deceased() -> dict | None:  # type: ignore[type-arg]
            got = (await reg.get(f"/v1/departures/{dep['departure_id']}", headers=OFFICER)).json()
            return got if got["status"] == "deceased" else None

        got = await eventually(deceased)
        assert got["version"] == dep["version"] + 1
        events = envelopes(await read_topic(settings, topics.DEPARTURES.name, min_count=2))
        assert [e["data"]["status"] for e in events] == ["departed", "deceased"]
