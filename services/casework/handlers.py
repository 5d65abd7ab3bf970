"""casework's Kafka side: accepted incidents become cases."""

from __future__ import annotations

import uuid

from services.casework import store
from shared.envelope import Envelope
from shared.events.casework import CaseOpened
from shared.events.intake import IncidentAccepted
from shared.service import Runtime
from shared.vocab import SEVERITY_RANK

CASE_NS = uuid.UUID("6f1c1d52-53f4-4e8b-9a57-1a2f0c7d3e10")


def case_id_for(incident_id: str) -> str:
    """The id of the case an incident opens: derived, so a redelivery finds the same case."""
    return uuid.uuid5(CASE_NS, incident_id).hex


def make_handlers(rt: Runtime):  # type: ignore[no-untyped-def]
    async def on_incident_accepted(env: Envelope, incident: IncidentAccepted) -> None:
        """Open a case for the incident, once."""
        now = rt.clock.now()
        case_id = case_id_for(incident.incident_id)
        opened = CaseOpened(
            case_id=case_id,
            incident_id=incident.incident_id,
            worker_key=incident.worker_key,
            worker_id=incident.match.worker_id,
            non_procedural=incident.match.non_procedural,
            mission_id=incident.mission_id,
            country=incident.country,
            category=incident.category,
            severity=incident.severity,
            priority=SEVERITY_RANK[incident.severity],
            opened_at=now,
        )
        doc = {
            "_id": case_id,
            **opened.model_dump(mode="python", exclude={"case_id", "incident_id"}),
            "incident_ids": [incident.incident_id],
            "worker_name": incident.worker_name,
            "status": "new",
            "timeline": [{"at": now, "kind": "opened", "by": "system", "event_id": env.id}],
            "_applied": [env.id],
        }
        if await store.insert_new(rt.db, rt.outbox.on_insert(doc, [rt.outbox.entry(opened, key=case_id)])):
            rt.relay.wake()

    return {IncidentAccepted: on_incident_accepted}
