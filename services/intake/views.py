"""intake's HTTP door for missions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from services.intake import store
from services.intake.models import IncidentAcceptedOut, IncidentIn
from shared.events.intake import IncidentAccepted
from shared.service import Runtime

router = APIRouter(prefix="/v1", tags=["incidents"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


@router.post("/incidents", status_code=status.HTTP_202_ACCEPTED, response_model=IncidentAcceptedOut)
async def post_incident(body: IncidentIn, request: Request) -> IncidentAcceptedOut:
    """Accept an incident report; the desk sees it as a case moments later."""
    rt = _runtime(request)
    incident_id = uuid.uuid4().hex
    now = rt.clock.now()
    worker_key = rt.vault.lookup_hash("name", body.worker_name)[:32]
    event = IncidentAccepted(
        incident_id=incident_id,
        mission_id=body.mission_id,
        country=body.country,
        category=body.category,
        severity=body.severity,
        occurred_at=body.occurred_at,
        reported_at=now,
        narrative=body.narrative,
        worker_key=worker_key,
        worker_name=body.worker_name,
    )
    doc = {"_id": incident_id, **event.model_dump(mode="python"), "status": "accepted"}
    await store.insert(rt.db, rt.outbox.on_insert(doc, [rt.outbox.entry(event, key=worker_key)]))
    rt.relay.wake(incident_id)
    return IncidentAcceptedOut(incident_id=incident_id)
