"""registry's rules, plain Python: ids from natural keys, status transitions, CSV rows, statistics."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date
from typing import Any

from shared import retention
from shared.events.registry import DepartureStatus, normalise_name

NS = uuid.UUID("0f6a1c8e-2d4b-4f0a-9c31-7e5d2b8a4c61")

# Indonesia's 38 provinces, as statistics group them. Input is matched case-insensitively.
PROVINCES = (
    "Aceh",
    "Sumatera Utara",
    "Sumatera Barat",
    "Riau",
    "Kepulauan Riau",
    "Jambi",
    "Sumatera Selatan",
    "Kepulauan Bangka Belitung",
    "Bengkulu",
    "Lampung",
    "DKI Jakarta",
    "Jawa Barat",
    "Banten",
    "Jawa Tengah",
    "DI Yogyakarta",
    "Jawa Timur",
    "Bali",
    "Nusa Tenggara Barat",
    "Nusa Tenggara Timur",
    "Kalimantan Barat",
    "Kalimantan Tengah",
    "Kalimantan Selatan",
    "Kalimantan Timur",
    "Kalimantan Utara",
    "Sulawesi Utara",
    "Gorontalo",
    "Sulawesi Tengah",
    "Sulawesi Barat",
    "Sulawesi Selatan",
    "Sulawesi Tenggara",
    "Maluku",
    "Maluku Utara",
    "Papua",
    "Papua Barat",
    "Papua Barat Daya",
    "Papua Selatan",
    "Papua Tengah",
    "Papua Pegunungan",
)
_PROVINCE_BY_KEY = {" ".join(p.upper().split()): p for p in PROVINCES}


def canonical_province(name: str) -> str | None:
    """The canonical spelling of a province, or None if it is not one of the 38."""
    return _PROVINCE_BY_KEY.get(" ".join(name.upper().split()))


def province(name: str) -> str:
    """A province's canonical spelling, or ValueError saying what is expected (a field validator of
    every model that takes a province: registry's departures, repatriation's home province)."""
    canonical = canonical_province(name)
    if canonical is None:
        raise ValueError("not one of Indonesia's 38 provinces (e.g. 'DKI Jakarta', 'Jawa Barat')")
    return canonical


def worker_id_for(identity_hash: str) -> str:
    """A worker's id, derived from the keyed hash of their NIK (or passport, lacking one)."""
    return uuid.uuid5(NS, f"worker|{identity_hash}").hex


def departure_id_for(worker_id: str, departure_date: date) -> str:
    """A departure's id from its natural key (worker, departure date): re-imports find the same record."""
    return uuid.uuid5(NS, f"departure|{worker_id}|{departure_date.isoformat()}").hex


def employer_id_for(name: str, country: str) -> str:
    """An employer's id from its normalised name and country."""
    return uuid.uuid5(NS, f"employer|{country.upper()}|{normalise_name(name)}").hex


# Which status may follow which. A new departure is a new record, so 'returned' is final here.
_NEXT: dict[DepartureStatus, set[DepartureStatus]] = {
    DepartureStatus.REGISTERED: {DepartureStatus.DEPARTED, DepartureStatus.ACTIVE_ABROAD},
    DepartureStatus.DEPARTED: {DepartureStatus.ACTIVE_ABROAD, DepartureStatus.RETURNED},
    DepartureStatus.ACTIVE_ABROAD: {DepartureStatus.RETURNED},
    DepartureStatus.RETURNED: set(),
    DepartureStatus.DECEASED: set(),
}


def may_move(previous: DepartureStatus, new: DepartureStatus) -> bool:
    """Whether a departure may go from one status to another (staying put is always allowed)."""
    if previous == new:
        return True
    if new == DepartureStatus.DECEASED:
        return previous != DepartureStatus.DECEASED
    return new in _NEXT[previous]


def change_of(previous: dict[str, Any] | None, snapshot: dict[str, Any]) -> str | None:
    """What a change is called in DepartureRecorded.change; None when nothing changed."""
    if previous is None:
        return "registered" if snapshot["status"] == DepartureStatus.REGISTERED else "recorded"
    if fingerprint(previous) == fingerprint(snapshot):
        return None
    if previous["status"] != snapshot["status"]:
        return str(snapshot["status"])
    return "updated"


# Where and for whom a worker goes, and the contract's dates and papers: tracked, and imported.
PLACEMENT_FIELDS = ("destination_country", "sector", "skill_level", "scheme", "agency_id", "agency_licence")
CONTRACT_FIELDS = (
    "contract_start",
    "contract_end",
    "departure_date",
    "departure_port",
    "training",
    "certificates",
)
TRACKED = (
    "status",
    "full_name",
    "date_of_birth",
    "sex",
    "nik_hash",
    "passport_hash",
    "home_province",
    "home_regency",
    *PLACEMENT_FIELDS,
    "employer_id",
    "employer_name",
    *CONTRACT_FIELDS,
)


# ---- Retention (UU PDP): departures that ended long ago keep their statistics, not the person ----

ANONYMISED = retention.ANONYMISED
ENDED = (DepartureStatus.RETURNED, DepartureStatus.DECEASED)
# What identifies the person on a departure; province, sector, skill, destination, scheme,
# dates of departure and contract, sex and agency stay: the statistics are made of them.
DEPARTURE_IDENTITY = {
    "full_name": ANONYMISED,
    "date_of_birth": None,
    "nik_hash": None,
    "passport_hash": None,
    "name_dob_hash": None,
    "home_regency": None,
}
WORKER_IDENTITY = ("nik_enc", "passport_enc", "phone_enc", "next_of_kin", "nik_hash", "passport_hash")


def fingerprint(snapshot: dict[str, Any]) -> str:
    """A digest of the fields that make a departure what it is (not timestamps or versions)."""
    core = {k: snapshot.get(k) for k in TRACKED}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()


# ---- The national placement system's CSV export ----

CSV_COLUMNS = (
    "nik",
    "passport_number",
    "full_name",
    "date_of_birth",
    "sex",
    "home_province",
    "home_regency",
    "phone",
    "next_of_kin_name",
    "next_of_kin_relation",
    "next_of_kin_phone",
    *PLACEMENT_FIELDS,
    "employer_name",
    *CONTRACT_FIELDS,
    "status",
)
REQUIRED_COLUMNS = ("nik", "full_name", "date_of_birth", "destination_country", "departure_date")


def missing_columns(header: list[str]) -> list[str]:
    """Required columns absent from a CSV header."""
    present = {h.strip().lower() for h in header}
    return [c for c in REQUIRED_COLUMNS if c not in present]


def row_to_input(row: dict[str, str | None]) -> dict[str, Any]:
    """A CSV row as the fields of DepartureIn: blanks are absent, lists split on ';'."""
    clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
    out: dict[str, Any] = {}
    for col in CSV_COLUMNS:
        value = clean.get(col, "")
        if not value or col.startswith("next_of_kin_"):
            continue
        if col in ("training", "certificates"):
            out[col] = [v.strip() for v in value.split(";") if v.strip()]
        elif col in ("destination_country", "sex"):
            out[col] = value.upper()
        elif col in ("sector", "skill_level", "scheme", "status"):
            out[col] = value.lower().replace(" ", "_").replace("-", "_")
        else:
            out[col] = value
    kin = {k: clean.get(f"next_of_kin_{k}", "") for k in ("name", "relation", "phone")}
    if any(kin.values()):
        out["next_of_kin"] = {k: v for k, v in kin.items() if v}
    return out


# ---- Statistics ----

DIMENSIONS = {
    "province": "home_province",
    "sector": "sector",
    "skill_level": "skill_level",
    "destination": "destination_country",
    "month": "departure_month",
}


def stats_pipeline(
    *,
    by: str,
    provinces: list[str] | None = None,
    filters: dict[str, str] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[dict[str, Any]]:
    """An aggregation ($match $group $sort $project only) counting departures along one dimension."""
    match: dict[str, Any] = {}
    if provinces is not None:
        match["home_province"] = {"$in": provinces}
    for dim, value in (filters or {}).items():
        match[DIMENSIONS[dim]] = value
    if date_from or date_to:
        rng: dict[str, str] = {}
        if date_from:
            rng["$gte"] = date_from.isoformat()
        if date_to:
            rng["$lte"] = date_to.isoformat()
        match["departure_date"] = rng
    sort = {"_id": 1} if by == "month" else {"count": -1, "_id": 1}
    return [
        {"$match": match},
        {"$group": {"_id": f"${DIMENSIONS[by]}", "count": {"$sum": 1}}},
        {"$sort": sort},
        # FerretDB 1.24 takes "$_id" in $project as a literal, so renaming _id to key is done by the caller.
        {"$project": {"_id": 1, "count": 1}},
    ]


def mask(value: str | None, keep: int = 4) -> str | None:
    """A personal identifier with all but its last characters hidden."""
    if not value:
        return value
    return "*" * max(len(value) - keep, 0) + value[-keep:]
