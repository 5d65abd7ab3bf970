"""Events on repatriation's topics: requests to start one, and workflow and step changes."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime

from shared.envelope import Event, event_type
from shared.topics import REPATRIATION_REQUESTS, REPATRIATIONS


class RepatriationKind(StrEnum):
    LIVING = "living"
    REMAINS = "remains"
    EVACUATION = "evacuation"


@event_type("lindungi.repatriation.requested.v1", REPATRIATION_REQUESTS, sent_by=("escalation",))
class RepatriationRequested(Event):
    """Start a repatriation; one case never gets two live workflows of the same kind."""

    request_id: str
    kind: RepatriationKind
    case_id: str | None = None  # none for an evacuation started on its own
    worker_id: str | None = None
    worker_key: str | None = None
    country: str
    region: str | None = None  # evacuation: a region of the country, or the whole country
    requested_by: Literal["desk", "rule", "mission"]
    reason: str
    requested_at: AwareDatetime


@event_type("lindungi.repatriation.workflow.changed.v1", REPATRIATIONS)
class WorkflowChanged(Event):
    repatriation_id: str
    case_id: str | None = None
    kind: RepatriationKind
    status: Literal["started", "completed", "cancelled", "rerouted", "home_province_set"]
    actor: str
    reason: str | None = None
    at: AwareDatetime
    to_step: str | None = None  # rerouted: the step the workflow went back to
    country: str | None = None
    home_province: str | None = None


@event_type("lindungi.repatriation.step.changed.v1", REPATRIATIONS)
class StepChanged(Event):
    """A step became active (with its deadline), was completed, skipped, failed or retried."""

    repatriation_id: str
    case_id: str | None = None
    kind: RepatriationKind
    step: str
    status: Literal["active", "done", "skipped", "failed", "retried", "undone"]
    owner: str  # mission, desk, debarkation, region
    due_at: AwareDatetime | None = None
    actor: str
    reason: str | None = None
    evidence: list[str] = []
    at: AwareDatetime
    effect: str | None = None  # undone: what was released ("booking released", "funding returned")
    attempt: int | None = None  # active/retried: which activation of the step this is
