"""The domain's shared words: incident categories, severities, regions. See design/domain.md."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Incident categories, from the ministry's complaint categories."""

    UNPAID_WAGES = "unpaid_wages"
    WANTS_TO_GO_HOME = "wants_to_go_home"
    ILLNESS = "illness"
    INJURY = "injury"  # injury or work accident
    DEATH = "death"
    PHYSICAL_ABUSE = "physical_abuse"
    SEXUAL_ABUSE = "sexual_abuse"
    PSYCHOLOGICAL_ABUSE = "psychological_abuse"
    DOCUMENTS_WITHHELD = "documents_withheld"
    CONTRACT_MISMATCH = "contract_mismatch"
    UNILATERAL_DISMISSAL = "unilateral_dismissal"
    OVERCHARGED_FEES = "overcharged_fees"
    LOST_CONTACT = "lost_contact"
    DETAINED = "detained"
    LEGAL_CASE = "legal_case"
    TRAFFICKING = "trafficking"  # TPPO indicators: always escalate
    UNDOCUMENTED = "undocumented"  # undocumented, overstay, deportation
    EVACUATION = "evacuation"  # disaster or conflict


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Region(StrEnum):
    """Desk queue regions by destination country."""

    ASEAN = "asean"
    EAST_ASIA = "east_asia"
    MIDDLE_EAST = "middle_east"
    EUROPE = "europe"
    OTHER = "other"


REGION_OF_COUNTRY: dict[str, Region] = {
    **dict.fromkeys(["MY", "SG", "BN", "TH", "VN", "PH", "KH", "LA", "MM", "TL"], Region.ASEAN),
    **dict.fromkeys(["KR", "JP", "TW", "HK", "MO", "CN"], Region.EAST_ASIA),
    **dict.fromkeys(
        ["SA", "AE", "QA", "KW", "OM", "BH", "JO", "TR", "IQ", "LB", "EG", "IL", "YE", "SY"],
        Region.MIDDLE_EAST,
    ),
    **dict.fromkeys(
        [
            "DE",
            "PL",
            "NL",
            "GB",
            "FR",
            "IT",
            "ES",
            "PT",
            "HU",
            "CZ",
            "SK",
            "RO",
            "BG",
            "AT",
            "BE",
            "SE",
            "NO",
            "DK",
            "FI",
            "IE",
            "LT",
            "LV",
            "EE",
            "HR",
            "SI",
            "GR",
            "CH",
            "RS",
            "UA",
        ],
        Region.EUROPE,
    ),
}


def region_of(country: str) -> Region:
    """The desk region of an ISO 3166-1 alpha-2 country code."""
    return REGION_OF_COUNTRY.get(country.upper(), Region.OTHER)
