"""The demo's cast and timetable: who acts, the week's workers, and when each scene happens."""

from __future__ import annotations

from dataclasses import dataclass

from shared.auth import dev_token

OPERATOR, ANI, BUDI, DEWI = "registry-operator", "officer-ani", "officer-budi", "supervisor-dewi"
CGK, DKI = "debarkation-cgk", "region-dki"


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_token(who)}"}


@dataclass(frozen=True)
class Worker:
    key: str
    name: str
    dob: str
    sex: str
    province: str
    country: str
    sector: str
    agency: str
    employer: str


def nik_for(i: int, dob: str, sex: str, tag: int) -> str:
    """A well-formed NIK for the week's i-th worker (women's day of birth + 40, as in real NIKs);
    `tag` makes the numbers differ between demo runs."""
    year, month, day = dob.split("-")
    nik_day = int(day) + (40 if sex == "F" else 0)
    return f"31{tag:02d}{i:02d}{nik_day:02d}{month}{year[2:]}{i:04d}"


# The week's workers (their NIKs differ between runs: see nik_for).
WORKERS = (
    Worker(
        "welder",
        "Agus Prasetyo",
        "1991-04-12",
        "M",
        "Jawa Tengah",
        "KR",
        "welding",
        "p3mi-bina-karya",
        "Hanil Steel Co.",
    ),
    Worker(
        "osaka",
        "Sri Wahyuni",
        "1996-08-03",
        "F",
        "Jawa Timur",
        "JP",
        "caregiving",
        "p3mi-sakura-mandiri",
        "Osaka Care Home",
    ),
    Worker(
        "riyadh-kin",
        "Nur Aini",
        "1989-02-21",
        "F",
        "Nusa Tenggara Barat",
        "SA",
        "domestic_work",
        "p3mi-amanah",
        "Al Faisal household",
    ),
    Worker(
        "jeddah",
        "Rahmat Hidayat",
        "1985-11-30",
        "M",
        "DKI Jakarta",
        "SA",
        "construction",
        "p3mi-amanah",
        "Red Sea Builders",
    ),
    Worker(
        "crew-1",
        "Joko Susilo",
        "1993-06-01",
        "M",
        "Jawa Tengah",
        "TW",
        "fishing_seafaring",
        "p3mi-samudra",
        "FV Kaohsiung 88",
    ),
    Worker(
        "crew-2",
        "Bambang Riyadi",
        "1995-01-17",
        "M",
        "Jawa Tengah",
        "TW",
        "fishing_seafaring",
        "p3mi-samudra",
        "FV Kaohsiung 88",
    ),
    Worker(
        "crew-3",
        "Eko Saputra",
        "1997-09-09",
        "M",
        "Jawa Barat",
        "TW",
        "fishing_seafaring",
        "p3mi-samudra",
        "FV Kaohsiung 88",
    ),
    Worker(
        "pl-1",
        "Dedi Kurniawan",
        "1990-03-05",
        "M",
        "Jawa Barat",
        "PL",
        "welding",
        "p3mi-eurojaya",
        "Gdansk Yards",
    ),
    Worker(
        "pl-2",
        "Hendra Wijaya",
        "1992-12-24",
        "M",
        "Jawa Barat",
        "PL",
        "welding",
        "p3mi-eurojaya",
        "Gdansk Yards",
    ),
    Worker(
        "pl-3",
        "Yusuf Maulana",
        "1994-07-14",
        "M",
        "Lampung",
        "PL",
        "construction",
        "p3mi-eurojaya",
        "Krakow Build",
    ),
    Worker(
        "ae-1",
        "Lestari Handayani",
        "1993-05-19",
        "F",
        "Nusa Tenggara Barat",
        "AE",
        "domestic_work",
        "p3mi-amanah",
        "Abu Dhabi household",
    ),
    Worker(
        "ae-2",
        "Wulan Sari",
        "1998-10-02",
        "F",
        "Nusa Tenggara Barat",
        "AE",
        "hospitality",
        "p3mi-amanah",
        "Corniche Hotel",
    ),
)


# When each scene happens: simulated hours after the demo starts (a week is 168).
SCENES = {
    "departures": 0,
    "ulsan": 20,
    "osaka": 22,
    "tokyo": 26,
    "riyadh": 44,
    "jeddah": 47,
    "taipei": 68,
    "warsaw": 71,
    "death_certificate_and_documents": 74,
    "cargo_booked": 82,
    "arrived_cargo_terminal": 98,
    "transported_home": 101,
    "handed_over": 104,
    "evacuation": 122,
    "end": 144,
}
