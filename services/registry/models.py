"""registry's HTTP models: departures with the worker behind them, agencies, employers, imports."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.registry.domain import province
from shared.events.intake import NIK_PATTERN, SAFE_TEXT, normalise_passport
from shared.events.registry import COUNTRY_CODES, DepartureStatus, Scheme, Sector, SkillLevel

PHONE = r"^\+?[0-9 ()-]{6,24}$"
ID = r"^[A-Za-z0-9_.-]+$"


def _country(v: str | None) -> str | None:
    if v is not None and v not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 code in upper case, e.g. KR")
    return v


class NextOfKin(BaseModel):
    """Whom to tell at home."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Ahmad Subekti"])
    relation: str | None = Field(None, min_length=1, max_length=40, pattern=SAFE_TEXT, examples=["husband"])
    phone: str | None = Field(None, pattern=PHONE, examples=["+62 812 3456 7890"])


class DepartureFields(BaseModel):
    """What a departure record holds besides the worker's identity (all optional for updates)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    destination_country: str | None = Field(None, description="ISO 3166-1 alpha-2", examples=["KR"])
    sector: Sector | None = Field(None, examples=[Sector.WELDING])
    skill_level: SkillLevel | None = Field(None, examples=[SkillLevel.MIDDLE])
    scheme: Scheme | None = Field(
        None, description="agency (P3MI), g2g, employer, independent (mandiri)", examples=[Scheme.AGENCY]
    )
    agency_id: str | None = Field(
        None,
        min_length=2,
        max_length=64,
        pattern=ID,
        description="The P3MI, for the agency scheme.",
        examples=["p3mi-bina-karya"],
    )
    agency_licence: str | None = Field(
        None, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9/ ._-]+$", examples=["KEP.123/PPTKIS/2024"]
    )
    employer_name: str | None = Field(
        None, min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Hanil Steel Co."]
    )
    contract_start: date | None = Field(None, examples=["2026-03-01"])
    contract_end: date | None = Field(None, examples=["2029-02-28"])
    departure_date: date | None = Field(
        None,
        description="Planned (registered) or actual (departed) date of departure.",
        examples=["2026-02-20"],
    )
    departure_port: str | None = Field(
        None, min_length=2, max_length=80, pattern=SAFE_TEXT, examples=["Soekarno-Hatta (CGK)"]
    )
    training: list[str] | None = Field(
        None,
        max_length=20,
        description="Pre-departure training completed.",
        examples=[["welding SMAW level 2", "Korean language (EPS-TOPIK)"]],
    )
    certificates: list[str] | None = Field(None, max_length=20, examples=[["BNSP welder 3G"]])
    status: DepartureStatus | None = Field(None, examples=[DepartureStatus.REGISTERED])

    @field_validator("destination_country")
    @classmethod
    def _dest(cls, v: str | None) -> str | None:
        return _country(v)

    @field_validator("training", "certificates")
    @classmethod
    def _items(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for item in v:
                if not 1 <= len(item) <= 120 or not re.match(SAFE_TEXT, item):
                    raise ValueError("each item: 1 to 120 characters, no control characters")
        return v

    @model_validator(mode="after")
    def _dates(self) -> DepartureFields:
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValueError("contract_end must not be before contract_start")
        return self


class DepartureIn(DepartureFields):
    """A worker and one departure, as a registry operator or the national export records it."""

    full_name: str = Field(min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Siti Rahayu"])
    date_of_birth: date = Field(examples=["1994-03-17"])
    sex: Literal["F", "M"] | None = Field(None, examples=["F"])
    nik: str | None = Field(
        None,
        pattern=NIK_PATTERN,
        description="16-digit NIK; encrypted at rest.",
        examples=["3171234567890001"],
    )
    passport_number: str | None = Field(
        None, min_length=7, max_length=10, description="Encrypted at rest.", examples=["C1234567"]
    )
    home_province: str = Field(
        min_length=2, max_length=60, description="One of Indonesia's 38 provinces.", examples=["DKI Jakarta"]
    )
    home_regency: str | None = Field(
        None, min_length=2, max_length=80, pattern=SAFE_TEXT, examples=["Jakarta Timur"]
    )
    phone: str | None = Field(None, pattern=PHONE, examples=["+62 812 1111 2222"])
    next_of_kin: NextOfKin | None = Field(
        None, examples=[{"name": "Ahmad Subekti", "relation": "husband", "phone": "+62 812 3456 7890"}]
    )
    destination_country: str = Field(description="ISO 3166-1 alpha-2", examples=["KR"])
    sector: Sector = Field(examples=[Sector.WELDING])
    skill_level: SkillLevel = Field(examples=[SkillLevel.MIDDLE])
    scheme: Scheme = Field(
        description="agency (P3MI), g2g, employer, independent (mandiri)", examples=[Scheme.AGENCY]
    )
    departure_date: date = Field(  # type: ignore[assignment]
        description="Planned (registered) or actual (departed) date of departure.", examples=["2026-02-20"]
    )
    status: DepartureStatus = Field(DepartureStatus.REGISTERED, examples=[DepartureStatus.REGISTERED])  # type: ignore[assignment]

    _passport = field_validator("passport_number")(normalise_passport)
    _province = field_validator("home_province")(province)

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, v: date) -> date:
        if v < date(1900, 1, 1):
            raise ValueError("must not be before 1900-01-01")
        return v

    @model_validator(mode="after")
    def _identity(self) -> DepartureIn:
        if not (self.nik or self.passport_number):
            raise ValueError("give a nik or a passport_number")
        if self.scheme == Scheme.AGENCY and not self.agency_id:
            raise ValueError("agency_id is required for the agency scheme")
        if self.departure_date < self.date_of_birth:
            raise ValueError("departure_date must be after date_of_birth")
        return self


class DepartureUpdate(DepartureFields):
    """Fields of a departure to change; the worker's identity is not changed here."""


class DepartureOut(BaseModel):
    """A departure as registry holds it (identifiers as keyed hashes only)."""

    departure_id: str
    worker_id: str
    version: int
    status: DepartureStatus
    full_name: str
    date_of_birth: str | None = Field(None, description="None once anonymised (retention).")
    sex: str | None = None
    home_province: str
    home_regency: str | None = None
    destination_country: str
    sector: Sector
    skill_level: SkillLevel
    scheme: Scheme
    agency_id: str | None = None
    agency_licence: str | None = None
    employer_id: str | None = None
    employer_name: str | None = None
    contract_start: str | None = None
    contract_end: str | None = None
    departure_date: str
    departure_port: str | None = None
    training: list[str] = []
    certificates: list[str] = []
    created_at: datetime
    updated_at: datetime
    anonymised_at: datetime | None = Field(None, description="When retention removed the identity.")


class NextOfKinOut(BaseModel):
    """Whom to tell at home, as answered: the phone is `[hidden]` unless asked for unmasked."""

    name: str
    relation: str | None = None
    phone: str | None = Field(None, examples=["[hidden]", "+62 812 3456 7890"])


class WorkerOut(BaseModel):
    """A worker with their departures. NIK, passport and phone numbers masked unless a registry
    writer asks for them unmasked (`?unmask=true` with an `X-Purpose`)."""

    worker_id: str
    full_name: str
    date_of_birth: str | None = Field(None, description="None once anonymised (retention).")
    sex: str | None = None
    nik: str | None = None
    passport_number: str | None = None
    home_province: str
    home_regency: str | None = None
    phone: str | None = None
    next_of_kin: NextOfKinOut | None = None
    departures: list[DepartureOut] = []


class WorkerSearch(BaseModel):
    """Find a worker by NIK or passport number (sent in the body, so never in a URL or access log)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    nik: str | None = Field(None, pattern=NIK_PATTERN, examples=["3171234567890001"])
    passport_number: str | None = Field(None, min_length=7, max_length=10, examples=["C1234567"])

    @model_validator(mode="after")
    def _one(self) -> WorkerSearch:
        if not (self.nik or self.passport_number):
            raise ValueError("give a nik or a passport_number")
        return self


class AgencyIn(BaseModel):
    """A licensed placement agency (P3MI)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["PT Bina Karya Mandiri"])
    licence: str = Field(
        min_length=2, max_length=64, pattern=r"^[A-Za-z0-9/ ._-]+$", examples=["KEP.123/PPTKIS/2024"]
    )
    licence_valid_until: date | None = Field(None, examples=["2029-12-31"])
    country: str = Field("ID", description="Where the agency is registered.", examples=["ID"])
    province: str | None = Field(None, min_length=2, max_length=60, examples=["DKI Jakarta"])

    @field_validator("country")
    @classmethod
    def _c(cls, v: str) -> str:
        return _country(v) or v


class EmployerIn(BaseModel):
    """An employer abroad."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200, pattern=SAFE_TEXT, examples=["Hanil Steel Co."])
    country: str = Field(description="ISO 3166-1 alpha-2", examples=["KR"])
    city: str | None = Field(None, min_length=1, max_length=100, pattern=SAFE_TEXT, examples=["Ulsan"])

    @field_validator("country")
    @classmethod
    def _c(cls, v: str) -> str:
        return _country(v) or v


class Flag(BaseModel):
    action_id: str
    rule_id: str
    reason: str
    requested_at: datetime


class PartyOut(BaseModel):
    """An agency or an employer, with flags raised by escalation rules."""

    id: str
    kind: Literal["agency", "employer"]
    name: str | None = None
    licence: str | None = None
    licence_valid_until: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    flagged: bool = False
    flags: list[Flag] = []
    cases_opened: int = 0
    cases_open: int = Field(0, description="cases about its workers still open (not resolved or closed)")
    cases_closed: int = Field(0, description="cases about its workers resolved or closed")


class RowError(BaseModel):
    line: int = Field(description="Line number in the file (the header is line 1).")
    reason: str


class ImportReport(BaseModel):
    """What an import did: good rows kept, each bad row with its line and why."""

    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[RowError]


class StatGroup(BaseModel):
    key: str | None
    count: int


class Statistics(BaseModel):
    by: str
    total: int
    provinces: list[str] | None = Field(None, description="The provinces counted (region users: theirs).")
    groups: list[StatGroup]
