"""Events owned by intake: incidents accepted from missions."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from shared.envelope import Event, event_type
from shared.topics import INCIDENTS
from shared.vocab import Category, Severity


class MatchMethod(StrEnum):
    NIK = "nik"
    PASSPORT = "passport"
    WORKER_ID = "worker_id"
    NAME_DOB = "name_dob"
    NONE = "none"


class WorkerMatch(BaseModel):
    """Who intake believes the incident is about."""

    worker_id: str | None = None
    method: MatchMethod = MatchMethod.NONE
    confidence: float = Field(0.0, ge=0, le=1)
    non_procedural: bool = True  # no departure record: still protected, and flagged


@event_type("lindungi.intake.incident.accepted.v1", INCIDENTS)
class IncidentAccepted(Event):
    incident_id: str
    mission_id: str
    country: str
    place: str | None = None
    category: Category
    severity: Severity
    occurred_at: AwareDatetime
    reported_at: AwareDatetime
    narrative: str = ""
    people_affected: int = 1
    worker_key: str  # worker id when matched, else a keyed hash of what the mission knows
    worker_name: str | None = None
    match: WorkerMatch = WorkerMatch()
    agency_id: str | None = None
    employer_name: str | None = None
    mission_reference: str | None = None
    linked_incident_ids: list[str] = []  # other missions' reports of the same worker and event
