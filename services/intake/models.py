"""intake's HTTP models: what a mission posts (the shared IncidentReport) and what it gets back."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.events.intake import IncidentReport, WorkerMatch
from shared.vocab import Category, Severity

IncidentIn = IncidentReport  # the same model on the HTTP and the Kafka door


class IncidentOut(BaseModel):
    """An accepted incident, with the worker match (never NIK or passport numbers)."""

    incident_id: str = Field(examples=["0b6f3c1e9d2a4f5b8c7d6e5f4a3b2c1d"])
    status: str = Field("accepted", examples=["accepted"])
    duplicate: bool = Field(False, description="True when this report repeats one accepted before.")
    mission_id: str
    mission_reference: str | None = None
    country: str
    place: str | None = None
    category: Category
    severity: Severity
    occurred_at: datetime
    reported_at: datetime
    people_affected: int
    worker_key: str
    worker_name: str | None = None
    match: WorkerMatch
    non_procedural: bool = Field(
        description="No departure record matched: protected all the same, and flagged."
    )
    departure_id: str | None = None
    matched_at: datetime | None = Field(
        None, description="When a report accepted unmatched was matched, once its departure arrived."
    )
    agency_id: str | None = None
    employer_name: str | None = None
    linked_incident_ids: list[str] = []
    suggested_incident_ids: list[str] = Field(
        default_factory=list,
        description="Reports naming a worker by the same name alone: maybe one person; the desk decides.",
    )


class NarrativeOut(BaseModel):
    """A report's narrative (identifiers in it masked at intake); every read is audited."""

    incident_id: str
    worker_key: str
    narrative: str


class MissionOut(BaseModel):
    id: str
    name: str
    kind: str
    city: str
    countries: list[str]
