"""casework's HTTP models: what desk users and missions send, and the mission's view of a case."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.casework.domain import MAX_ESCALATION_LEVEL, MAX_PRIORITY


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
