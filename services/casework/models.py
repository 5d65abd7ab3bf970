"""casework's HTTP models: what desk users and missions send, and the mission's view of a case."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.casework.domain import MAX_ESCALATION_LEVEL, MAX_PRIORITY
from shared.vocab import Category


class ReasonIn(BaseModel):
    """An action with an optional reason (triage, claim, acknowledge, release, ...)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(
        None, max_length=2000, description="Why, for the timeline", examples=["checked"]
    )


class RequiredReasonIn(BaseModel):
    """An action that needs a reason (reopen, close)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=1, max_length=2000, description="Why, for the timeline", examples=["new facts"]
    )


class TriageIn(ReasonIn):
    """Triage, optionally into another category (e.g. a report of illness that is a death)."""

    category: Category | None = Field(
        None, description="The category the desk finds, when it differs from the report's", examples=["death"]
    )


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(
        min_length=1, max_length=4000, description="How the case ended", examples=["wages paid in full"]
    )
    reason: str | None = Field(None, max_length=2000, description="Why, for the timeline")


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=64, description="Officer id", examples=["officer-budi"])
    reason: str = Field(min_length=1, max_length=2000, description="Why", examples=["Budi speaks Korean"])


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(
        ge=0, le=MAX_PRIORITY, strict=True, description="0 lowest .. 10 highest", examples=[8]
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why", examples=["worker is pregnant"])


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: int | None = Field(
        None,
        ge=1,
        le=MAX_ESCALATION_LEVEL,
        strict=True,
        description="Target level; one up when omitted",
        examples=[2],
    )
    reason: str = Field(
        min_length=1, max_length=2000, description="Why", examples=["no answer from employer"]
    )


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1,
        max_length=10_000,
        description="Internal note (never shown to missions)",
        examples=["called the agency"],
    )


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="A tag", examples=["media-attention"])
    reason: str | None = Field(None, max_length=2000, description="Why")


class MissionRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1,
        max_length=4000,
        description="What the desk asks the mission",
        examples=["please visit the worker"],
    )
    mission_id: str | None = Field(
        None,
        max_length=64,
        description="The mission asked: the reporting one by default, or another serving the case's country",
        examples=["kbri-seoul"],
    )


class MissionAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(
        min_length=1,
        max_length=10_000,
        description="The mission's answer",
        examples=["visited on 3 Dec; safe"],
    )


class MissionRequestView(BaseModel):
    request_id: str = Field(description="Request id", examples=["3f2c..."])
    text: str = Field(description="What the desk asked")
    sent_at: datetime = Field(description="When the desk asked")
    status: str = Field(description="open or answered", examples=["open"])
    answer: str | None = Field(None, description="The mission's answer")
    answered_at: datetime | None = Field(None, description="When it answered")


class MissionCaseView(BaseModel):
    """What a mission sees of a case in its jurisdiction: status, never the desk's internal notes."""

    case_id: str = Field(description="Case id")
    status: str = Field(description="Case status", examples=["in_progress"])
    country: str = Field(description="Destination country", examples=["KR"])
    category: str = Field(description="Category", examples=["unpaid_wages"])
    opened_at: datetime = Field(description="When the case opened")
    updated_at: datetime | None = Field(None, description="Last change")
    incident_ids: list[str] = Field(default_factory=list, description="Incidents the case holds")
    requests: list[MissionRequestView] = Field(
        default_factory=list, description="The desk's requests to this mission"
    )


class QueueView(BaseModel):
    id: str = Field(description="Queue id", examples=["east_asia-general"])
    title: str = Field(description="Title", examples=["East Asia: general"])
    region: str = Field(description="Region of destination countries", examples=["east_asia"])
    kind: str = Field(description="trafficking, death or general", examples=["general"])
    depth: int = Field(description="Cases waiting to be claimed", examples=[4])
    oldest_case_id: str | None = Field(None, description="The longest-waiting case")
    oldest_opened_at: datetime | None = Field(None, description="When it opened")


class QueueCase(BaseModel):
    """A case waiting in a queue, as a queue list shows it."""

    case_id: str = Field(description="Case id")
    status: str = Field(description="new or triaged", examples=["new"])
    country: str = Field(description="Destination country", examples=["KR"])
    category: str = Field(description="Category", examples=["injury"])
    severity: str = Field(description="Severity", examples=["high"])
    priority: int = Field(description="0 lowest .. 10 highest", examples=[6])
    escalation_level: int = Field(0, description="0 (none) .. 3")
    non_procedural: bool = Field(False, description="No departure record matched")
    worker_name: str | None = Field(None, description="The worker's name as reported")
    mission_id: str | None = Field(None, description="The reporting mission")
    opened_at: datetime = Field(description="When the case opened")
    due_at: datetime | None = Field(None, description="Acknowledge deadline")


class OfficerLoad(BaseModel):
    officer: str = Field(description="Officer id", examples=["officer-ani"])
    assigned: int = Field(0, description="Claimed, not yet acknowledged")
    in_progress: int = Field(0, description="Acknowledged and being worked")
    awaiting_repatriation: int = Field(0, description="Waiting on a repatriation")


class Supervision(BaseModel):
    queues: list[QueueView] = Field(description="Every queue with depth and oldest waiting case")
    officers: list[OfficerLoad] = Field(description="Open cases per officer")


# --- answers about cases (declared, so storage keys such as open_key never leave the store) ----------


class TimelineEntry(BaseModel):
    """One line of a case's history: what happened, when, by whom and why, with the facts of its kind."""

    model_config = ConfigDict(extra="allow")  # each kind carries its own facts (level, step, request_id...)
    at: datetime = Field(description="When it happened")
    kind: str = Field(description="What happened", examples=["claimed"])
    by: str = Field(description="Officer id, 'system' or 'rule:<id>'", examples=["officer-ani"])
    reason: str | None = Field(None, description="Why")


class CaseMissionRequest(MissionRequestView):
    """A request the desk sent a mission, as the desk sees it."""

    mission_id: str = Field(description="The mission asked", examples=["kbri-seoul"])
    by: str | None = Field(None, description="The desk user who asked")


class CaseView(BaseModel):
    """A protection (or investigation) case as the desk reads it: facts, stamps, requests, timeline."""

    case_id: str = Field(description="Case id")
    kind: str = Field("protection", description="protection, or investigation (opened by a rule)")
    status: str = Field(description="Case status", examples=["in_progress"])
    country: str = Field(description="Destination country", examples=["KR"])
    region: str | None = Field(None, description="Region of the country", examples=["east_asia"])
    category: str = Field(description="Category", examples=["unpaid_wages"])
    family: str | None = Field(None, description="Category family within which a worker's incidents join")
    severity: str = Field(description="Severity", examples=["high"])
    priority: int = Field(description="0 lowest .. 10 highest", examples=[6])
    queue: str | None = Field(None, description="Desk queue", examples=["east_asia-general"])
    mission_id: str | None = Field(None, description="The reporting mission", examples=["kbri-seoul"])
    group: bool = Field(False, description="A case for many people (an evacuation)")
    people_affected: int = Field(1, description="People the reports name as affected")
    worker_key: str | None = Field(None, description="The key the first report named its worker by")
    worker_keys: list[str] = Field(default_factory=list, description="Every worker key the case holds")
    worker_id: str | None = Field(None, description="The registered worker, once matched")
    worker_name: str | None = Field(None, description="The worker's name as reported")
    non_procedural: bool = Field(False, description="No departure record matched")
    agency_id: str | None = Field(None, description="Placement agency")
    employer_name: str | None = Field(None, description="Employer")
    home_province: str | None = Field(None, description="The worker's home province")
    departure_id: str | None = Field(None, description="The matched departure")
    subject: str | None = Field(None, description="An investigation's subject", examples=["agency:p3mi-x"])
    source_case_id: str | None = Field(None, description="An investigation's prompting case")
    trigger_incident_ids: list[str] = Field(
        default_factory=list, description="The incidents that triggered an investigation"
    )
    incident_ids: list[str] = Field(default_factory=list, description="Incidents the case holds")
    suggested_incident_ids: list[str] = Field(
        default_factory=list, description="Same-name reports a desk officer may confirm or reject"
    )
    rejected_suggestions: list[str] = Field(default_factory=list, description="Suggestions rejected")
    merged_into: str | None = Field(None, description="The case this one was merged into")
    merged_from: list[str] = Field(default_factory=list, description="Cases merged into this one")
    assignee: str | None = Field(None, description="The officer holding the case")
    lease_until: datetime | None = Field(None, description="When an unacknowledged claim goes back")
    escalation_level: int = Field(0, description="0 (none) .. 3")
    tags: list[str] = Field(default_factory=list, description="Tags")
    resolution: str | None = Field(None, description="How the case ended")
    opened_at: datetime = Field(description="When the case opened")
    updated_at: datetime | None = Field(None, description="Last change")
    due_at: datetime | None = Field(None, description="Acknowledge deadline")
    triaged_at: datetime | None = None
    assigned_at: datetime | None = None
    acknowledged_at: datetime | None = None
    awaiting_repatriation_at: datetime | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    anonymised_at: datetime | None = Field(None, description="When retention anonymised the case")
    awaiting_missions: list[str] = Field(default_factory=list, description="Missions with an open request")
    mission_requests: list[CaseMissionRequest] = Field(
        default_factory=list, description="The desk's requests to missions"
    )
    timeline: list[TimelineEntry] = Field(default_factory=list, description="What happened, oldest first")
    actions: list[str] | None = Field(None, description="Lifecycle actions the reader may take now")
    suggestion_actions: list[str] | None = Field(
        None, description="What the reader may do with the suggestions (confirm, reject)"
    )


class MissionRequestCreated(BaseModel):
    """A request sent: its id and the case as it is now."""

    request_id: str = Field(description="Request id")
    case: CaseView = Field(description="The case")
