"""intake's Kafka side: the system-to-system door, and registry's departures for matching."""

from __future__ import annotations

from services.intake import service
from shared.auth import load_directory
from shared.envelope import Envelope, Event
from shared.errors import PermanentError
from shared.events.casework import CaseAnonymised
from shared.events.intake import IncidentSubmitted
from shared.events.registry import DepartureRecorded
from shared.kafka import Handler
from shared.service import Runtime


def submission_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """INCIDENT_SUBMISSIONS: validated like the HTTP door; a refusal goes to the dead-letter topic."""

    async def on_submitted(env: Envelope, msg: IncidentSubmitted) -> None:
        mission = load_directory().missions.get(msg.mission_id)
        if mission is None:
            raise PermanentError(f"mission_id: unknown mission {msg.mission_id!r}")
        try:
            await service.submit(
                rt=rt,
                submitter=service.Submitter(mission_id=mission.id, countries=mission.countries),
                report=msg.report,
                idempotency_key=msg.idempotency_key,
                via="kafka",
                message_id=env.id,
            )
        except service.Refused as exc:
            raise PermanentError(f"refused ({exc.status}): {exc}") from None

    return {IncidentSubmitted: on_submitted}


def departure_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """DEPARTURES: intake's own projection of registry's departures; reports waiting for one are matched."""

    async def on_departure(env: Envelope, event: DepartureRecorded) -> None:
        await service.project(db=rt.db, event=event)
        await service.match_waiting(rt=rt, event=event)

    return {DepartureRecorded: on_departure}


def case_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """CASES: a case anonymised by retention takes its incidents' reports with it."""

    async def on_anonymised(env: Envelope, event: CaseAnonymised) -> None:
        await service.forget(rt=rt, incident_ids=event.incident_ids, at=event.anonymised_at)

    return {CaseAnonymised: on_anonymised}
