"""Test data for registry and intake: credentials, a departure, the sample export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CSV = ROOT / "services" / "registry" / "sample_departures.csv"


def bearer(principal_id: str) -> dict[str, str]:
    """The Authorization header of a development credential."""
    return {"Authorization": f"Bearer dev-{principal_id}"}


OPERATOR = bearer("registry-operator")
OFFICER = bearer("officer-ani")
REGION_DKI = bearer("region-dki")


def departure(**over: Any) -> dict[str, Any]:
    """A departure as a registry operator posts it."""
    base: dict[str, Any] = {
        "full_name": "Siti Rahayu",
        "date_of_birth": "1994-01-05",
        "sex": "F",
        "nik": "3171014501940001",
        "passport_number": "C1234567",
        "home_province": "DKI Jakarta",
        "home_regency": "Jakarta Timur",
        "phone": "+62 812 1111 2222",
        "destination_country": "KR",
        "sector": "welding",
        "skill_level": "middle",
        "scheme": "agency",
        "agency_id": "p3mi-bina-karya",
        "employer_name": "Hanil Steel Co.",
        "departure_date": "2026-02-20",
        "status": "departed",
    }
    return {**base, **over}
