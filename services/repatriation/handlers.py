"""repatriation's Kafka side: start requests, registry's departures (projection and step events),
casework's cases, and intake's reports of people in an evacuation's area."""

from __future__ import annotations

import logging

from services.repatriation import commands, evacuation, service, store
from services.repatriation.evacuees import EvacueeStatus
from services.repatriation.steps import WorkflowRequest
from shared.envelope import Envelope, Event
from shared.events.casework import CaseOpened, CaseWorkerMatched
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.events.registry import DepartureRecorded, DepartureStatus
from shared.events.repatriation import RepatriationRequested
from shared.kafka import Handler
from shared.service import Runtime

log = logging.getLogger("lindungi.repatriation")

# What of a RepatriationRequested event the workflow keeps as its request.
REQUEST_FIELDS = set(WorkflowRequest.model_fields) & set(RepatriationRequested.model_fields)


def request_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """REPATRIATION_REQUESTS: start the workflow a request asks for, once."""

    async def on_requested(env: Envelope, request: RepatriationRequested) -> None:
        """Start the workflow a request asks for, once; a request for a live one is noted on it."""
        asked = WorkflowRequest.model_validate(request.model_dump(include=REQUEST_FIELDS))
        actor = request.requested_by if request.requested_by != "rule" else f"rule:{request.request_id}"
        outcome, doc = await service.start(rt=rt, kind=request.kind, request=asked, actor=actor)
        if outcome == "live":
            entry = {
                "scope": "workflow",
                "status": "request_joined",
                "actor": request.requested_by,
                "at": rt.clock.now(),
                "reason": f"request {request.request_id} found this workflow live: {request.reason}",
            }
            await store.note_request(rt.db, doc["_id"], entry, env.id)

    return {RepatriationRequested: on_requested}


def departure_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """DEPARTURES: repatriation's own projection; a return completes arrival and brings evacuees home."""

    async def on_departure(env: Envelope, event: DepartureRecorded) -> None:
        """Keep the departure projection; a return completes the arrival step and brings evacuees home."""
        await store.record_departures(rt.db, [event])
        current = await rt.db[store.DEPARTURES].find_one({"_id": event.departure_id})
        if current is None or current["version"] != event.version:
            return  # an older snapshot: what it says is no longer true
        for doc in await store.live_without_home(rt.db, worker_id=event.worker_id):
            await service.fill_home(rt, doc["_id"])  # the projection above holds this departure
        if event.status == DepartureStatus.RETURNED:
            await _returned(env, event)
        elif event.status.value in store.ABROAD:
            await _abroad(event)

    async def _returned(env: Envelope, event: DepartureRecorded) -> None:
        now = rt.clock.now()
        for doc in await store.live_for_worker(rt.db, event.worker_id):
            await service.act(
                rt=rt,
                workflow_id=doc["_id"],
                decide=lambda plan, wf: commands.on_event(
                    plan,
                    wf,
                    event="departure_returned",
                    actor="registry",
                    now=now,
                    evidence=[f"departure {event.departure_id} v{event.version} returned"],
                ),
                event_id=env.id,
            )
        for evacuation_id in await store.evacuations_live_for(rt.db, event.worker_id):
            await evacuation.move_evacuees(
                rt=rt,
                evacuation_id=evacuation_id,
                worker_ids=[event.worker_id],
                status=EvacueeStatus.HOME,
                actor="registry",
                note=f"departure {event.departure_id} returned",
            )

    async def _abroad(event: DepartureRecorded) -> None:
        # A worker registered abroad joins every live evacuation of its area, also one whose
        # fan-out is still listing: the listing may have passed this worker's projection (written
        # just above) already, and its end would then miss it (the chaos run lost 3 of 300 so).
        # Evacuee ids are derived, so listing a worker twice keeps one document.
        for evacuation_id in await store.live_evacuations_in(rt.db, event.destination_country.upper()):
            departure = store.departure_doc(event)
            person = evacuation.evacuee_doc(evacuation_id, departure, rt.clock.now())
            await store.insert_evacuees(rt.db, [person])

    return {DepartureRecorded: on_departure}


def case_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """CASES: which cases exist, so that a repatriation for no case is refused at the door."""

    async def on_case_opened(env: Envelope, event: CaseOpened) -> None:
        await store.record_case(
            rt.db, case_id=event.case_id, country=event.country, opened_at=event.opened_at
        )

    async def on_worker_matched(env: Envelope, event: CaseWorkerMatched) -> None:
        """The case's worker matched late: kept with the case, and a workflow started before (by a
        rule, not knowing the worker) learns its home."""
        await store.note_case_worker(
            rt.db,
            case_id=event.case_id,
            worker_id=event.worker_id or None,
            home_province=event.home_province,
            departure_id=event.departure_id,
        )
        for doc in await store.live_without_home(rt.db, case_id=event.case_id):
            await service.fill_home(rt, doc["_id"])

    return {CaseOpened: on_case_opened, CaseWorkerMatched: on_worker_matched}


def incident_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """INCIDENTS: a person a mission reports in a live evacuation's area is one of its people."""

    async def on_incident(env: Envelope, event: IncidentAccepted) -> None:
        """A person a mission reports in a live evacuation's area is one of its people, registered or not."""
        await evacuation.add_reported_person(rt, event)

    async def on_matched(env: Envelope, matched: IncidentMatched) -> None:
        """A reported person matched late: the evacuation's list shows the registered worker."""
        await evacuation.match_reported_person(rt, matched)

    return {IncidentAccepted: on_incident, IncidentMatched: on_matched}
