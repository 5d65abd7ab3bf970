"""Events owned by intake: incident reports submitted by missions, and incidents accepted."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.envelope import MISSION_SYSTEMS, Event, event_type
from shared.events.registry import COUNTRY_CODES
from shared.topics import INCIDENT_SUBMISSIONS, INCIDENTS
from shared.vocab import Category, Severity

NIK_PATTERN = r"^\d{16}$"
# Indonesian passports: one or two letters then 6-8 digits (e.g. C1234567, AB123456).
PASSPORT_PATTERN = r"^[A-Z]{1,2}\d{6,8}$"


def normalise_passport(v: str | None) -> str | None:
    """A passport number without spaces, upper case; ValueError unless letters then digits."""
    if v is None:
        return v
    v = "".join(v.upper().split())
    if not re.match(PASSPORT_PATTERN, v):
        raise ValueError("one or two letters followed by 6 to 8 digits")
    return v


SAFE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # no control characters


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


# ---- The report a mission submits: the same model on both doors (HTTP and Kafka) ----


class ReportedWorker(BaseModel):
    """The worker as the mission knows them: any of worker id, NIK, passport, name (+ date of birth)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    worker_id: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The registry's worker id, when the mission has it.",
        examples=["5b0c3f6e9a2d4c1b8e7f6a5d4c3b2a19"],
    )
    nik: str | None = Field(
        None,
        pattern=NIK_PATTERN,
        description="16-digit national identity number. Encrypted at rest, never echoed back.",
        examples=["3171234567890001"],
    )
    passport_number: str | None = Field(
        None,
        min_length=7,
        max_length=10,
        description="Indonesian passport number (letters then digits). Encrypted at rest.",
        examples=["C1234567"],
    )
    full_name: str | None = Field(
        None, min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Siti Rahayu"]
    )
    date_of_birth: date | None = Field(None, description="As on the passport.", examples=["1994-03-17"])
    sex: Literal["F", "M"] | None = Field(None, examples=["F"])
    phone: str | None = Field(
        None,
        pattern=r"^\+?[0-9 ()-]{6,24}$",
        description="Where the worker can be reached.",
        examples=["+82 10 1234 5678"],
    )

    _passport = field_validator("passport_number")(normalise_passport)

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, v: date | None) -> date | None:
        # Not in the future is checked against the service clock (intake's domain).
        if v is not None and v < date(1900, 1, 1):
            raise ValueError("must not be before 1900-01-01")
        return v

    @model_validator(mode="after")
    def _something_known(self) -> ReportedWorker:
        if not (self.worker_id or self.nik or self.passport_number or self.full_name):
            raise ValueError("give at least one of worker_id, nik, passport_number, full_name")
        return self


class ReportedAgency(BaseModel):
    """The placement agency (P3MI) as the mission knows it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    agency_id: str | None = Field(
        None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", examples=["p3mi-bina-karya"]
    )
    name: str | None = Field(
        None, min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["PT Bina Karya"]
    )


class ReportedEmployer(BaseModel):
    """The employer as the mission knows it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Hanil Steel Co."])
    city: str | None = Field(None, min_length=1, max_length=100, pattern=SAFE_TEXT, examples=["Ulsan"])


class Reporter(BaseModel):
    """Who at the mission (or outside it) made the report, to call back."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=120, pattern=SAFE_TEXT, examples=["Rudi Hartono"])
    role: str | None = Field(
        None, min_length=1, max_length=80, pattern=SAFE_TEXT, examples=["protection attaché"]
    )
    phone: str | None = Field(None, pattern=r"^\+?[0-9 ()-]{6,24}$", examples=["+82 2 783 5675"])
    email: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        examples=["protection@kbri-seoul.example"],
    )


class IncidentReport(BaseModel):
    """An incident as a mission reports it (HTTP body, and the payload of the Kafka door)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    mission_id: str | None = Field(
        None,
        min_length=2,
        max_length=64,
        description="The reporting mission: the caller's own (taken from the credential if left out).",
        examples=["kbri-seoul"],
    )
    mission_reference: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_./-]+$",
        description="The mission's own case number; the same reference twice is one incident.",
        examples=["SEL/2026/0412"],
    )
    country: str = Field(
        description="Where it happened: ISO 3166-1 alpha-2, within the mission's jurisdiction.",
        examples=["KR"],
    )
    place: str | None = Field(
        None, min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Ulsan, Nam-gu industrial park"]
    )
    occurred_at: AwareDatetime = Field(
        description="When it happened, with time zone; not in the future.",
        examples=["2026-11-20T09:30:00+09:00"],
    )
    reported_at: AwareDatetime | None = Field(
        None,
        description="When the mission learned of it, with time zone; defaults to the time of receipt.",
        examples=["2026-11-20T14:05:00+09:00"],
    )
    category: Category = Field(examples=[Category.UNPAID_WAGES])
    severity: Severity = Field(examples=[Severity.HIGH])
    narrative: str = Field(
        "",
        max_length=10_000,
        description="What happened, in the mission's words. Do not put NIK or passport numbers here.",
        examples=["Wages unpaid for three months; the employer holds the worker's passport."],
    )
    worker: ReportedWorker | None = Field(
        None,
        description="The worker concerned; may be left out only for a group report (people_affected > 1).",
        examples=[{"full_name": "Siti Rahayu", "date_of_birth": "1994-03-17", "passport_number": "C1234567"}],
    )
    agency: ReportedAgency | None = Field(None, examples=[{"agency_id": "p3mi-bina-karya"}])
    employer: ReportedEmployer | None = Field(None, examples=[{"name": "Hanil Steel Co.", "city": "Ulsan"}])
    reporter: Reporter | None = Field(None, examples=[{"name": "Rudi Hartono", "phone": "+82 2 783 5675"}])
    people_affected: int = Field(
        1, ge=1, le=100_000, strict=True, description="An evacuation can be hundreds.", examples=[1, 250]
    )

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        if v not in COUNTRY_CODES:
            raise ValueError("must be an ISO 3166-1 alpha-2 code in upper case, e.g. KR")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> IncidentReport:
        if self.worker is None and self.people_affected <= 1:
            raise ValueError("worker is required unless people_affected is more than 1")
        if self.reported_at is not None and self.occurred_at > self.reported_at:
            raise ValueError("occurred_at must not be after reported_at")
        return self


@event_type("lindungi.intake.incident.submitted.v1", INCIDENT_SUBMISSIONS, sent_by=(MISSION_SYSTEMS,))
class IncidentSubmitted(Event):
    """A report from a trusted mission system (the Kafka door); validated exactly like the HTTP door."""

    mission_id: str = Field(min_length=2, max_length=64)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)
    report: IncidentReport


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
    # Added later, optional.
    departure_id: str | None = None  # the matched departure
    received_via: Literal["http", "kafka"] | None = None
    # Reports naming a worker of the same name alone: for the desk to confirm or reject, never joined.
    suggested_incident_ids: list[str] = []


@event_type("lindungi.intake.incident.matched.v1", INCIDENTS)
class IncidentMatched(Event):
    """An incident accepted as non-procedural, matched once its worker's departure reached intake."""

    incident_id: str
    worker_key: str  # the key the incident was accepted under (its events' partition key)
    match: WorkerMatch
    departure_id: str
    agency_id: str | None = None
    employer_name: str | None = None
    worker_name: str | None = None
    home_province: str | None = None
    matched_at: AwareDatetime
    # What a rule routing on the incident needs (an investigation's country and queue).
    country: str | None = None
    category: Category | None = None
