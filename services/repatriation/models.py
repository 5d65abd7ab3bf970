"""repatriation's HTTP models: what callers post, and the shapes of the answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registry.domain import province  # the one list of provinces
from services.repatriation.evacuees import EvacueeStatus
from services.repatriation.plans import Requirement
from services.repatriation.steps import Workflow
from shared.events.repatriation import RepatriationKind
from shared.vocab import Region

COUNTRY = Field(pattern=r"^[A-Z]{2}$", examples=["MY"], description="host country, ISO 3166-1 alpha-2")


class Facts(BaseModel):
    """What decides which steps apply."""

    model_config = ConfigDict(extra="forbid")
    passport_missing: bool = Field(
        False, strict=True, description="passport missing or withheld: an SPLP is needed"
    )
    sick: bool = Field(False, strict=True, description="the worker is ill or injured: fit-to-travel applies")
    has_family: bool = Field(True, strict=True, description="false: hand over to the social affairs ministry")
    via_hub: bool = Field(
        False, strict=True, description="remains fly through a hub with an onward domestic leg"
    )


class StartIn(BaseModel):
    """Start a living-worker or remains repatriation."""

    model_config = ConfigDict(extra="forbid")
    kind: RepatriationKind = Field(examples=["living"], description="living or remains")
    request_id: str | None = Field(
        None,
        min_length=6,
        max_length=100,
        examples=["desk-2026-0001"],
        description="idempotency key: the same request twice gives one workflow",
    )
    case_id: str | None = Field(None, max_length=64, examples=["6f1c1d5253f44e8b9a571a2f0c7d3e10"])
    worker_id: str | None = Field(None, max_length=64, examples=["w-000123"])
    worker_key: str | None = Field(None, max_length=64, description="intake's key when no worker id")
    worker_name: str | None = Field(None, max_length=200, examples=["Siti Rahayu"])
    country: str = COUNTRY
    home_province: str | None = Field(None, max_length=100, examples=["DKI Jakarta"])
    home_regency: str | None = Field(None, max_length=100, examples=["Jakarta Timur"])
    facts: Facts = Field(default_factory=Facts, description="what decides which steps apply")
    reason: str = Field(min_length=3, max_length=2000, examples=["worker wants to go home; wages unpaid"])


class EvacuationIn(BaseModel):
    """Start an evacuation of every registered worker abroad in a country (or a desk region)."""

    model_config = ConfigDict(extra="forbid")
    request_id: str | None = Field(None, min_length=6, max_length=100, examples=["evac-lb-2026-11"])
    case_id: str | None = Field(None, max_length=64, description="the group case, if there is one")
    country: str = COUNTRY
    region: Region | None = Field(
        None,
        examples=["middle_east"],
        description="a desk region (asean, east_asia, middle_east, europe) to cover all its countries",
    )
    reason: str = Field(min_length=3, max_length=2000, examples=["armed conflict; airport closing"])


class CompleteIn(BaseModel):
    """A step done: the documents that prove it, and the data the step asks for."""

    model_config = ConfigDict(extra="forbid")
    evidence: list[str] = Field(
        default_factory=list,
        max_length=50,
        examples=[["SPLP/KL/2026/00123"]],
        description="document references (numbers, file ids)",
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"document": "splp"}],
        description="what the step requires, e.g. flight, arrival_at, debarkation_point; payer, recoverable",
    )


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=2000, examples=["the worker chose to stay"])


class HomeProvinceIn(BaseModel):
    """Set or correct the worker's home province (the region that owns the home-side steps)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    home_province: str = Field(
        min_length=2, max_length=60, description="One of Indonesia's 38 provinces.", examples=["Jawa Barat"]
    )
    reason: str = Field(min_length=3, max_length=2000, examples=["the KTP says Bandung, not Jakarta"])

    _province = field_validator("home_province")(province)


class RerouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_step: str = Field(examples=["travel_booked"], description="a step the plan allows going back to")
    reason: str = Field(min_length=3, max_length=2000, examples=["flight cancelled; rebook"])


class EvacueesIn(BaseModel):
    """Move workers of an evacuation to a new status."""

    model_config = ConfigDict(extra="forbid")
    worker_ids: list[str] = Field(min_length=1, max_length=10_000, examples=[["w-000123"]])
    status: EvacueeStatus = Field(examples=["safe"])
    note: str | None = Field(None, max_length=1000, examples=["at the embassy shelter"])
    confirmed: bool = Field(
        False,
        description="A supervisor confirms the workers unaccounted (the search is over): they count as "
        "accounted for, and the evacuation completes when everyone is.",
    )


class EvacueesMoved(BaseModel):
    requested: int = Field(description="workers named")
    moved: int = Field(description="workers whose status changed (others could not move that way)")


class Progress(BaseModel):
    """Where an evacuation stands, in total and by status (and by province when asked)."""

    evacuation_id: str
    total: int
    by_status: dict[str, int] = Field(examples=[{"unaccounted": 10, "safe": 40, "home": 50}])
    by_province: dict[str, dict[str, int]] | None = None
    fanout: str = Field(description="pending while workers are still being listed; done after")
    non_procedural: int = Field(0, description="people a mission reported who have no departure record")
    confirmed_unaccounted: int = Field(0, description="unaccounted, and confirmed so by a supervisor")
    status: str = Field(
        "active", description="the evacuation's status: completed once everyone is accounted for"
    )


# ---------------------------------------------------------------- answers


class StepNeeds(BaseModel):
    """What completing the current step needs, from its plan."""

    evidence: bool = Field(description="at least one document reference")
    requires: dict[str, Requirement] = Field(
        description="data fields: a list of allowed values, or text, bool, time",
        examples=[{"escort": "bool"}],
    )


class WorkflowActions(BaseModel):
    """What the caller may do on the whole workflow now."""

    cancel: bool
    reroute_to: list[str] = Field(description="steps the caller may send the workflow back to")


class Fanout(BaseModel):
    """An evacuation's listing of the registered workers abroad in its area."""

    status: str = Field(description="pending while workers are still being listed; done after")
    countries: list[str]
    count: int | None = Field(None, description="workers listed, once done")
    finished_at: datetime | None = None


class TimelineEntry(BaseModel):
    """One thing that happened to the workflow, or to one of its steps."""

    scope: str = Field(description="workflow or step")
    status: str
    actor: str
    at: datetime
    step: str | None = None
    owner: str | None = None
    due_at: datetime | None = None
    reason: str | None = None
    effect: str | None = Field(None, description="what was released: booking released, funding returned")
    attempt: int | None = None
    to_step: str | None = None
    evidence: list[str] | None = None


class RepatriationView(Workflow):
    """A workflow as answered: its request, steps, effects, timeline (null in lists), current step,
    what that step needs and what the caller may do now."""

    model_config = ConfigDict(populate_by_name=True)
    id: str = Field(alias="repatriation_id")
    timeline: list[TimelineEntry] | None = Field(None, description="one workflow only; null in lists")
    fanout: Fanout | None = Field(None, description="evacuations only")
    current_step: str | None = None
    current_step_status: str | None = None
    current_step_needs: StepNeeds | None = None
    actions: list[str] = Field(description="what this caller may do on the current step now")
    workflow_actions: WorkflowActions
    may_set_home_province: bool


class EvacueeView(BaseModel):
    """One person of an evacuation and where they stand."""

    evacuation_id: str
    worker_id: str = Field(description="the registered worker's id, or intake's key for a person reported")
    full_name: str | None = None
    home_province: str | None = None
    home_regency: str | None = None
    country: str | None = None
    registered: bool
    non_procedural: bool
    status: EvacueeStatus
    listed_at: datetime
    updated_at: datetime | None = None
    updated_by: str | None = None
    confirmed_unaccounted: bool | None = None
    incident_id: str | None = Field(None, description="the report that listed or found them")
    reported_by: str | None = None
    matched_from: str | None = Field(None, description="the report's worker key, matched late to a worker")


class ReturnItem(BaseModel):
    """A workflow bringing a worker (or remains) to a region: where it stands, the booked flight."""

    repatriation_id: str
    kind: RepatriationKind
    case_id: str | None = None
    worker_name: str | None = None
    home_province: str | None = None
    home_regency: str | None = None
    from_country: str
    current_step: str | None = None
    current_step_due_at: datetime | None = None
    flight: str | None = None
    arrival_at: str | None = None
    debarkation_point: str | None = None


class RegionReturns(BaseModel):
    """Returns to a region's provinces: arriving, awaiting the region's witness, evacuees not home."""

    provinces: list[str]
    arriving: list[ReturnItem] = Field(description="soonest arrival first; no booking yet last")
    awaiting_witness: list[ReturnItem] = Field(description="waiting on the hand-over at home")
    evacuees_not_home: dict[str, int] = Field(
        description="evacuees of these provinces by status, those home left out"
    )
