"""registry's domain: ids from natural keys, status transitions, CSV rows, statistics pipelines."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.registry import domain
from services.registry.models import DepartureIn
from shared.errors import field_errors
from shared.events.registry import DepartureStatus as S

ROW = {
    "nik": "3171014501940001",
    "passport_number": "c1234567",
    "full_name": "Siti Rahayu",
    "date_of_birth": "1994-01-05",
    "sex": "f",
    "home_province": "dki jakarta",
    "home_regency": "Jakarta Timur",
    "phone": "",
    "next_of_kin_name": "Ahmad",
    "next_of_kin_relation": "husband",
    "next_of_kin_phone": "",
    "destination_country": "kr",
    "sector": "Fishing Seafaring",
    "skill_level": "Middle",
    "scheme": "agency",
    "agency_id": "p3mi-x",
    "training": "welding; Korean ;",
    "departure_date": "2026-02-20",
    "status": "departed",
}


def test_ids_come_from_natural_keys() -> None:
    w = domain.worker_id_for("hash-of-nik")
    assert w == domain.worker_id_for("hash-of-nik") != domain.worker_id_for("other")
    d = domain.departure_id_for(w, date(2026, 2, 20))
    assert d == domain.departure_id_for(w, date(2026, 2, 20)) != domain.departure_id_for(w, date(2026, 2, 21))
    assert domain.employer_id_for("Hanil  steel co.", "kr") == domain.employer_id_for("HANIL STEEL CO", "KR")


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (S.REGISTERED, S.DEPARTED, True),
        (S.DEPARTED, S.ACTIVE_ABROAD, True),
        (S.ACTIVE_ABROAD, S.RETURNED, True),
        (S.ACTIVE_ABROAD, S.DECEASED, True),
        (S.DEPARTED, S.DEPARTED, True),
        (S.DEPARTED, S.REGISTERED, False),
        (S.RETURNED, S.ACTIVE_ABROAD, False),
        (S.DECEASED, S.RETURNED, False),
        (S.REGISTERED, S.RETURNED, False),
    ],
)
def test_status_transitions(old: S, new: S, ok: bool) -> None:
    assert domain.may_move(old, new) is ok


def test_change_names_what_happened() -> None:
    snap = {"status": "registered", "full_name": "A", "updated_at": 1}
    assert domain.change_of(None, snap) == "registered"
    assert domain.change_of(None, {**snap, "status": "departed"}) == "recorded"
    assert domain.change_of(snap, {**snap, "updated_at": 2}) is None  # timestamps are not a change
    assert domain.change_of(snap, {**snap, "status": "departed"}) == "departed"
    assert domain.change_of(snap, {**snap, "full_name": "B"}) == "updated"


def test_a_csv_row_becomes_a_valid_departure() -> None:
    data = DepartureIn.model_validate(domain.row_to_input(ROW))
    assert data.home_province == "DKI Jakarta"
    assert data.destination_country == "KR"
    assert data.passport_number == "C1234567"
    assert str(data.sector) == "fishing_seafaring"
    assert data.training == ["welding", "Korean"]
    assert data.next_of_kin is not None and data.next_of_kin.relation == "husband"
    assert data.phone is None


def test_bad_rows_say_which_field_and_why() -> None:
    bad = {
        **ROW,
        "nik": "12345",
        "home_province": "Atlantis",
        "destination_country": "Korea",
        "sector": "mining",
    }
    with pytest.raises(ValidationError) as info:
        DepartureIn.model_validate(domain.row_to_input(bad))
    assert {e["field"] for e in field_errors(info.value)} == {
        "nik",
        "home_province",
        "destination_country",
        "sector",
    }
    with pytest.raises(ValidationError, match="agency_id is required"):
        DepartureIn.model_validate(domain.row_to_input({**ROW, "agency_id": ""}))
    with pytest.raises(ValidationError, match="nik or a passport_number"):
        DepartureIn.model_validate(domain.row_to_input({**ROW, "nik": "", "passport_number": ""}))


def test_missing_columns_are_named() -> None:
    assert domain.missing_columns(["NIK", "full_name", "date_of_birth"]) == [
        "destination_country",
        "departure_date",
    ]


def test_statistics_use_only_supported_stages() -> None:
    pipeline = domain.stats_pipeline(
        by="month", provinces=["DKI Jakarta"], filters={"sector": "welding"}, date_from=date(2026, 1, 1)
    )
    assert [next(iter(stage)) for stage in pipeline] == ["$match", "$group", "$sort", "$project"]
    assert pipeline[0]["$match"] == {
        "home_province": {"$in": ["DKI Jakarta"]},
        "sector": "welding",
        "departure_date": {"$gte": "2026-01-01"},
    }
    assert pipeline[1]["$group"]["_id"] == "$departure_month"
    assert pipeline[2]["$sort"] == {"_id": 1}
    assert domain.stats_pipeline(by="sector")[2]["$sort"] == {"count": -1, "_id": 1}


def test_masking_keeps_the_last_digits() -> None:
    assert domain.mask("3171014501940001") == "************0001"
    assert domain.mask(None) is None
