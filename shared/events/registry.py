"""Events on registry's topics: departures (owned by registry) and commands to the registry."""

from __future__ import annotations

import re
import unicodedata
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
    # Added later, optional: what a mission may not know but a case wants to show.
    employer_name: str | None = None
    sex: str | None = None


# ISO 3166-1 alpha-2: destination countries (registry) and incident countries (intake).
COUNTRY_CODES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR
    HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG
    NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE
    SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)


def normalise_name(name: str) -> str:
    """One spelling of a person's name: no accents or punctuation, single spaces, upper case.

    Digits stay: what tells two people apart ("Worker 00001", "Worker 00002") may not fold away.
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.upper().split())


def name_dob_key(name: str, date_of_birth: date | str) -> str:
    """What registry and intake both hash as `name_dob` (vault.lookup_hash("name_dob", key))."""
    dob = date_of_birth.isoformat() if isinstance(date_of_birth, date) else date_of_birth
    return f"{normalise_name(name)}|{dob}"
