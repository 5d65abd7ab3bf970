"""intake's HTTP models: what a mission posts and what it gets back."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.vocab import Category, Severity


class IncidentIn(BaseModel):
    """An incident as a mission reports it."""

    model_config = ConfigDict(extra="forbid")

    mission_id: str = Field(min_length=2, max_length=64, examples=["kbri-seoul"])
    country: str = Field(pattern=r"^[A-Z]{2}$", examples=["KR"], description="ISO 3166-1 alpha-2")
    worker_name: str = Field(min_length=1, max_length=200, examples=["Siti Rahayu"])
    category: Category = Field(examples=[Category.UNPAID_WAGES])
    severity: Severity = Field(examples=[Severity.HIGH])
    occurred_at: AwareDatetime = Field(examples=["2026-11-20T09:30:00+09:00"])
    narrative: str = Field("", max_length=10_000)


class IncidentAcceptedOut(BaseModel):
    incident_id: str
    status: str = "accepted"
