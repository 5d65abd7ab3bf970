"""repatriation's HTTP models: what callers post, and the shapes of the answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registry.domain import canonical_province  # the one list of provinces
from services.repatriation.evacuees import EvacueeStatus
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

    @field_validator("home_province")
    @classmethod
    def _province(cls, v: str) -> str:
        canonical = canonical_province(v)
        if canonical is None:
            raise ValueError("not one of Indonesia's 38 provinces (e.g. 'DKI Jakarta', 'Jawa Barat')")
        return canonical


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
