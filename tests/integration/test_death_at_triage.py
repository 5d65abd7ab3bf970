"""A death confirmed at triage changes the registry as a death report does (issue 14, "a death
changes the registry"): a case reported as lost contact, triaged by the desk as a death, sets the
worker's departure to deceased; triage into a category of another family moves the case's key."""

from __future__ import annotations

import uuid

import pytest

from services.casework.app import create_app as create_casework
from services.registry.app import create_app as create_registry
from shared import topics
from shared.clock import ManualClock
from shared.events.intake import WorkerMatch
from shared.settings import Settings
from tests.support.casework import OFFICER, incident, publish_incident
from tests.support.escalation import T0
from tests.support.harness import envelopes, eventually, read_topic, running
from tests.support.registry_data import OPERATOR, departure

pytestmark = pytest.mark.integration


async def test_a_death_confirmed_at_triage_sets_the_departure_to_deceased(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with (
        running(create_registry(settings, clock)) as reg,
        running(create_casework(settings, clock)) as cw,
    ):
        nik = "3171014501940" + str(uuid.uuid4().int)[:3]
        dep = (await reg.post("/v1/departures", json=departure(nik=nik), headers=OPERATOR)).json()
        worker = dep["worker_id"]
        lost = incident(
            worker_key=worker,
            category="lost_contact",
            severity="high",
            match=WorkerMatch(worker_id=worker, non_procedural=False),
        )
        await publish_incident(settings, lost)

        async def case() -> dict | None:  # type: ignore[type-arg]
            found = (
                await cw.get("/v1/cases", params={"incident_id": lost.incident_id}, headers=OFFICER)
            ).json()
            return found[0] if found else None

        c = await eventually(case)
        assert c["category"] == "lost_contact" and c["queue"].endswith("-general")
        r = await cw.post(
            f"/v1/cases/{c['case_id']}/triage",
            json={"reason": "the hospital confirmed", "category": "death"},
            headers=OFFICER,
        )
        assert r.status_code == 200, r.text
        triaged = r.json()
        assert (triaged["category"], triaged["family"], triaged["status"]) == ("death", "death", "triaged")
        assert triaged["queue"].endswith("-death") and triaged["priority"] > c["priority"]
        note = triaged["timeline"][-1]
        assert (note["kind"], note["category"], note["previous_category"]) == (
            "triaged",
            "death",
            "lost_contact",
        )

        async def deceased() -> dict | None:  # type: ignore[type-arg]
            got = (await reg.get(f"/v1/departures/{dep['departure_id']}", headers=OFFICER)).json()
            return got if got["status"] == "deceased" else None

        await eventually(deceased)
        events = envelopes(await read_topic(settings, topics.DEPARTURES.name, min_count=2))
        assert [e["data"]["status"] for e in events] == ["departed", "deceased"]

        # the worker's next death report joins the death case (its key moved with the category)
        again = incident(
            worker_key=worker, category="death", match=WorkerMatch(worker_id=worker, non_procedural=False)
        )
        await publish_incident(settings, again)

        async def joined() -> dict | None:  # type: ignore[type-arg]
            got = (await cw.get(f"/v1/cases/{c['case_id']}", headers=OFFICER)).json()
            return got if again.incident_id in got["incident_ids"] else None

        await eventually(joined)


async def test_a_bad_category_at_triage_is_refused_naming_the_field(settings: Settings) -> None:
    async with running(create_casework(settings, ManualClock(T0))) as cw:
        inc = incident()
        await publish_incident(settings, inc)

        async def case() -> dict | None:  # type: ignore[type-arg]
            found = (
                await cw.get("/v1/cases", params={"incident_id": inc.incident_id}, headers=OFFICER)
            ).json()
            return found[0] if found else None

        c = await eventually(case)
        r = await cw.post(f"/v1/cases/{c['case_id']}/triage", json={"category": "dead"}, headers=OFFICER)
        assert r.status_code == 422 and "category" in r.text
