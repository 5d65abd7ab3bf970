"""repatriation's Kafka side: start requests, and registry's departures (projection and step events)."""

from __future__ import annotations

import logging

from services.repatriation import commands, evacuation, service, store
from services.repatriation.evacuees import EvacueeStatus
from shared.envelope import Envelope
from shared.events.casework import CaseOpened
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.events.registry import DepartureRecorded, DepartureStatus
from shared.events.repatriation import RepatriationRequested
from shared.service import Runtime

log = logging.getLogger("lindungi.repatriation")


def make_handlers(rt: Runtime):  # type: ignore[no-untyped-def]
    async def on_requested(env: Envelope, r: RepatriationRequested) -> None:
        """Start the workflow a request asks for, once; a request for a live one is noted on it."""
        outcome, doc = await service.start(
            rt=rt,
            kind=r.kind,
            request_id=r.request_id,
            requested_by=r.requested_by,
            actor=r.requested_by if r.requested_by != "rule" else f"rule:{r.request_id}",
            reason=r.reason,
            country=r.country,
            case_id=r.case_id,
            worker_id=r.worker_id,
            worker_key=r.worker_key,
            region=r.region,
        )
        if outcome == "live":
            entry = {
                "scope": "workflow",
                "status": "request_joined",
                "actor": r.requested_by,
                "at": rt.clock.now(),
                "reason": f"request {r.request_id} found this workflow live: {r.reason}",
            }
            await store.note_request(rt.db, doc["_id"], entry, env.id)

    return {RepatriationRequested: on_requested}


def make_departure_handlers(rt: Runtime):  # type: ignore[no-untyped-def]
    async def on_departure(env: Envelope, e: DepartureRecorded) -> None:
        """Keep the departure projection; a return completes the arrival step and brings evacuees home."""
        await store.record_departures(rt.db, [e])
        current = await rt.db[store.DEPARTURES].find_one({"_id": e.departure_id})
        if current is None or current["version"] != e.version:
            return  # an older snapshot: what it says is no longer true
        if e.status == DepartureStatus.RETURNED:
            await _returned(env, e)
        elif e.status.value in store.ABROAD:
            await _abroad(e)

    async def _returned(env: Envelope, e: DepartureRecorded) -> None:
        now = rt.clock.now()
        for doc in await store.live_for_worker(rt.db, e.worker_id):
            await service.act(
                rt=rt,
                workflow_id=doc["_id"],
                decide=lambda plan, wf: commands.on_event(
                    plan,
                    wf,
                    event="departure_returned",
                    actor="registry",
                    now=now,
                    evidence=[f"departure {e.departure_id} v{e.version} returned"],
                ),
                event_id=env.id,
            )
        for evacuation_id in await store.evacuations_live_for(rt.db, e.worker_id):
            await evacuation.move_evacuees(
                rt=rt,
                evacuation_id=evacuation_id,
                worker_ids=[e.worker_id],
                status=EvacueeStatus.HOME,
                actor="registry",
                note=f"departure {e.departure_id} returned",
            )

    async def _abroad(e: DepartureRecorded) -> None:
        # A worker registered abroad joins every live evacuation of its area, also one whose
        # fan-out is still listing: the listing may have passed this worker's projection (written
        # just above) already, and its end would then miss it (the chaos run lost 3 of 300 so).
        # Evacuee ids are derived, so listing a worker twice keeps one document.
        for evacuation_id in await store.live_evacuations_in(rt.db, e.destination_country.upper()):
            d = store.departure_doc(e)
            await store.insert_evacuees(rt.db, [evacuation.evacuee_doc(evacuation_id, d, rt.clock.now())])

    return {DepartureRecorded: on_departure}


def make_case_handlers(rt: Runtime):  # type: ignore[no-untyped-def]
    async def on_case_opened(env: Envelope, e: CaseOpened) -> None:
        """Know which cases exist, so that a repatriation for no case is refused at the door."""
        await store.record_case(rt.db, case_id=e.case_id, country=e.country, opened_at=e.opened_at)

    return {CaseOpened: on_case_opened}


def make_incident_handlers(rt: Runtime):  # type: ignore[no-untyped-def]
    async def on_incident(env: Envelope, e: IncidentAccepted) -> None:
        """A person a mission reports in a live evacuation's area is one of its people, registered or not."""
        await evacuation.add_reported_person(rt, e)

    async def on_matched(env: Envelope, m: IncidentMatched) -> None:
        """A reported person matched late: the evacuation's list shows the registered worker."""
        await evacuation.match_reported_person(rt, m)

    return {IncidentAccepted: on_incident, IncidentMatched: on_matched}
