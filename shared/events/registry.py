"""Events on registry's topics: departures (owned by registry) and commands to the registry."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime

from shared.envelope import Event, event_type
from shared.topics import DEPARTURES


class DepartureStatus(StrEnum):
    REGISTERED = "registered"
    DEPARTED = "departed"
    ACTIVE_ABROAD = "active_abroad"
    RETURNED = "returned"
    DECEASED = "deceased"


class Sector(StrEnum):
    WELDING = "welding"
    HOSPITALITY = "hospitality"
    ENGINEERING = "engineering"
    CAREGIVING = "caregiving"
    MANUFACTURING = "manufacturing"
    CONSTRUCTION = "construction"
    AGRICULTURE = "agriculture"
    FISHING_SEAFARING = "fishing_seafaring"
    DOMESTIC_WORK = "domestic_work"
    OTHER = "other"


class SkillLevel(StrEnum):
    LOW = "low"
    MIDDLE = "middle"
    HIGH = "high"


class Scheme(StrEnum):
    AGENCY = "agency"  # P3MI, with its licence
    G2G = "g2g"
    EMPLOYER = "employer"  # employer's own placement
    INDEPENDENT = "independent"  # mandiri


@event_type("lindungi.registry.departure.recorded.v1", DEPARTURES)
class DepartureRecorded(Event):
    """A departure as it now stands (a snapshot: projections keep the highest version).

    NIK and passport numbers never travel in clear: only their keyed hashes, for matching.
    """

    worker_id: str
    departure_id: str
    version: int  # grows with every change of this departure
    change: str  # what changed: "registered", "updated", "departed", "returned", ...
    status: DepartureStatus
    full_name: str
    date_of_birth: date | None = None
    nik_hash: str | None = None
    passport_hash: str | None = None
    name_dob_hash: str | None = None  # keyed hash of normalised name + date of birth
    home_province: str | None = None
    home_regency: str | None = None
    destination_country: str
    sector: Sector
    skill_level: SkillLevel
    scheme: Scheme
    agency_id: str | None = None
    employer_id: str | None = None
    departure_date: date | None = None
    recorded_at: AwareDatetime
