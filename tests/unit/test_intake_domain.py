"""intake's domain: time checks, dedup keys, matching, worker keys, the report model's validation,
and the body limit in front of its HTTP door."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from services.intake import domain
from services.intake.app import BodyLimit
from shared.errors import field_errors
from shared.events.intake import IncidentReport, MatchMethod
from shared.events.registry import name_dob_key, normalise_name

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def report(**over: object) -> IncidentReport:
    base: dict[str, object] = {
        "country": "KR",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
        "worker": {"full_name": "Siti Rahayu", "date_of_birth": "1994-01-05"},
    }
    return IncidentReport.model_validate({**base, **over})


def test_times_within_clock_skew_pass_and_beyond_fail() -> None:
    assert domain.time_errors(report(occurred_at=(NOW + timedelta(minutes=4)).isoformat()), NOW) == []
    errors = domain.time_errors(
        report(
            occurred_at=(NOW + timedelta(minutes=6)).isoformat(),
            reported_at=(NOW + timedelta(hours=2)).isoformat(),
            worker={"full_name": "A", "date_of_birth": "2027-01-01"},
        ),
        NOW,
    )
    assert {e["field"] for e in errors} == {"occurred_at", "reported_at", "worker.date_of_birth"}


def test_a_report_from_decades_ago_is_refused() -> None:
    errors = domain.time_errors(report(occurred_at="1990-01-01T00:00:00+07:00"), NOW)
    assert [e["field"] for e in errors] == ["occurred_at"]


def test_time_zones_are_compared_as_instants() -> None:
    # 20:59 in Seoul is 11:59 UTC: before NOW, so fine, though the wall-clock reading is later.
    assert domain.time_errors(report(occurred_at="2026-11-20T20:59:00+09:00"), NOW) == []


def test_dedup_keys_and_ids_are_per_mission_and_stable() -> None:
    ref, key = domain.dedup_keys(
        mission_id="kbri-seoul", mission_reference="SEL/1", idempotency_key="k1", message_id=None
    )
    assert ref == "kbri-seoul|ref|SEL/1" and key == "kbri-seoul|key|k1"
    assert domain.incident_id_for(ref, key) == domain.incident_id_for(ref, None)
    other, _ = domain.dedup_keys(
        mission_id="kbri-tokyo", mission_reference="SEL/1", idempotency_key=None, message_id=None
    )
    assert domain.incident_id_for(other, None) != domain.incident_id_for(ref, None)
    _, from_message = domain.dedup_keys(
        mission_id="m", mission_reference=None, idempotency_key=None, message_id="e1"
    )
    assert from_message == "m|msg|e1"
    assert domain.incident_id_for(None, None) != domain.incident_id_for(None, None)


def cand(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "_id": "d1",
        "worker_id": "w1",
        "nik_hash": "nh1",
        "passport_hash": "ph1",
        "name_norm": "SITI RAHAYU",
        "date_of_birth": "1994-01-05",
        "destination_country": "KR",
        "departure_date": "2026-02-20",
        "version": 1,
    }
    return {**base, **over}


def test_exact_match_by_passport_is_certain() -> None:
    m, dep = domain.match_worker(domain.Identity(passport_hash="ph1"), [cand()], country="KR")
    assert (m.method, m.confidence, m.non_procedural, m.worker_id) == (MatchMethod.PASSPORT, 1.0, False, "w1")
    assert dep is not None and dep["_id"] == "d1"


def test_nik_wins_over_a_different_workers_passport() -> None:
    cands = [cand(), cand(_id="d2", worker_id="w2", nik_hash="nh2", passport_hash="ph2")]
    m, _ = domain.match_worker(domain.Identity(nik_hash="nh2", passport_hash="ph1"), cands, country="KR")
    assert (m.method, m.worker_id) == (MatchMethod.NIK, "w2")


def test_of_a_workers_departures_the_one_in_the_incident_country_is_chosen() -> None:
    cands = [cand(_id="old-kr", departure_date="2020-01-01"), cand(_id="new-jp", destination_country="JP")]
    _, dep = domain.match_worker(domain.Identity(worker_id="w1"), cands, country="KR")
    assert dep is not None and dep["_id"] == "old-kr"


def test_name_and_date_of_birth_match_with_recorded_confidence() -> None:
    exact, _ = domain.match_worker(
        domain.Identity(name=normalise_name("siti  rahayu"), date_of_birth="1994-01-05"),
        [cand()],
        country="KR",
    )
    assert exact.method == MatchMethod.NAME_DOB and exact.confidence == pytest.approx(0.9)
    typo, _ = domain.match_worker(
        domain.Identity(name=normalise_name("Siti Rahayuu"), date_of_birth="1994-01-05"),
        [cand()],
        country="KR",
    )
    assert typo.method == MatchMethod.NAME_DOB and 0.76 < typo.confidence < 0.9
    reordered, _ = domain.match_worker(
        domain.Identity(name=normalise_name("Rahayu, Siti"), date_of_birth="1994-01-05"),
        [cand()],
        country="KR",
    )
    assert reordered.confidence == pytest.approx(0.9)


def test_a_different_person_or_birth_date_is_no_match() -> None:
    for identity in (
        domain.Identity(name="SITI RAHAYU", date_of_birth="1994-01-06"),
        domain.Identity(name="DEWI LESTARI", date_of_birth="1994-01-05"),
        domain.Identity(passport_hash="unknown"),
    ):
        m, dep = domain.match_worker(identity, [cand()], country="KR")
        assert (m.method, m.non_procedural, m.worker_id, dep) == (MatchMethod.NONE, True, None, None)


def test_worker_key_prefers_the_worker_id_then_hashes() -> None:
    matched, _ = domain.match_worker(domain.Identity(passport_hash="ph1"), [cand()], country="KR")
    assert domain.worker_key(matched, None, "i1") == "w1"
    unmatched, _ = domain.match_worker(domain.Identity(passport_hash="x" * 64), [], country="KR")
    assert domain.worker_key(unmatched, domain.Identity(passport_hash="x" * 64), "i1") == "x" * 32
    assert domain.worker_key(unmatched, None, "i1") == "group-i1"


def test_names_normalise_to_one_spelling_for_the_shared_hash() -> None:
    assert normalise_name("  Siti   Rahayu-Binti Ahmad ") == "SITI RAHAYU BINTI AHMAD"
    assert normalise_name("Élan") == "ELAN"
    assert name_dob_key("siti rahayu", date(1994, 1, 5)) == name_dob_key("SITI  RAHAYU", "1994-01-05")


def errors_of(**over: object) -> set[str]:
    with pytest.raises(ValidationError) as info:
        report(**over)
    return {e["field"] for e in field_errors(info.value)}


def test_report_validation_names_each_bad_field() -> None:
    fields = errors_of(
        country="Korea",
        severity="urgent",
        people_affected=0,
        narrative="x" * 10_001,
        worker={"nik": "123", "passport_number": "12345678"},
        occurred_at="2026-11-20T09:30:00",
    )
    assert fields == {
        "country",
        "severity",
        "people_affected",
        "narrative",
        "worker.nik",
        "worker.passport_number",
        "occurred_at",
    }


def test_a_report_needs_a_worker_unless_it_is_about_a_group() -> None:
    assert errors_of(worker=None) == {"(message)"}
    assert report(worker=None, people_affected=250, category="evacuation").worker is None
    assert errors_of(worker={"sex": "F"}) == {"worker"}


def test_passport_numbers_are_normalised_and_unknown_fields_refused() -> None:
    assert report(worker={"passport_number": " c 1234567 "}).worker.passport_number == "C1234567"  # type: ignore[union-attr]
    assert errors_of(extra_field=1) == {"extra_field"}
    assert errors_of(occurred_at="2026-11-20T10:00:00+00:00", reported_at="2026-11-20T09:00:00+00:00") == {
        "(message)"
    }


def test_reports_within_the_window_of_the_same_worker_and_category_are_linked() -> None:
    occurred = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    items = [
        {
            "incident_id": "near",
            "occurred_at": datetime(2026, 11, 18, 12, 0),
        },  # naive UTC, as MongoDB returns
        {"incident_id": "far", "occurred_at": occurred - timedelta(days=4)},
        {"incident_id": "self", "occurred_at": occurred},
    ]
    assert domain.to_link(items, occurred, own_id="self") == ["near"]
    assert domain.link_group("w1", "detained") == "w1|detained"
    assert domain.link_group("group-i1", "evacuation") is None


def test_lookup_keys_match_the_keys_departures_are_filed_under() -> None:
    identity = domain.Identity(passport_hash="ph", date_of_birth="1994-01-05", name="SITI")
    filed = domain.departure_keys(
        worker_id="w1", nik_hash="nh", passport_hash="ph", date_of_birth="1994-01-05"
    )
    assert set(domain.lookup_keys(identity)) <= set(filed)
    assert domain.lookup_keys(domain.Identity(name="SITI")) == []


def test_a_name_alone_keys_the_report_to_itself_and_only_suggests() -> None:
    name_only = domain.Identity(name="SITI AMINAH", name_hash="n" * 64)
    key = domain.worker_key(domain.WorkerMatch(), name_only, "inc1")
    assert key == "unidentified-inc1"
    assert domain.link_group(key, "unpaid_wages") is None  # joins nobody's case
    assert domain.suggestion_group(name_only, key, "unpaid_wages") == f"name|{'n' * 32}|unpaid_wages"
    with_dob = domain.Identity(name="SITI AMINAH", name_hash="n" * 64, name_dob_hash="d" * 64)
    strong = domain.worker_key(domain.WorkerMatch(), with_dob, "inc2")
    assert strong == "d" * 32
    assert domain.link_group(strong, "unpaid_wages") == f"{'d' * 32}|unpaid_wages"
    assert domain.suggestion_group(with_dob, strong, "unpaid_wages") is None


def test_digits_tell_two_names_apart() -> None:
    assert normalise_name("Worker 00001") != normalise_name("Worker 00002")
    assert normalise_name("  Sîti   Àminah ") == normalise_name("siti aminah")


def test_links_are_bounded_whatever_the_group_size() -> None:
    occurred = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    items = [{"incident_id": f"i{n:03}", "occurred_at": occurred} for n in range(200)]
    linked = domain.to_link(items, occurred, own_id="new")
    assert len(linked) == domain.MAX_LINKS
    assert linked[0] == "i000" and linked[-1] == "i199"  # the first report and the latest ones


def test_a_repeat_differs_field_by_field() -> None:
    first = domain.report_fields(report())
    assert domain.differing(first, domain.report_fields(report())) == []
    again = domain.report_fields(report(category="death", worker={"full_name": "Siti Rahayu"}))
    assert domain.differing(first, again) == ["category", "worker.date_of_birth"]


async def test_a_body_declared_too_large_is_refused_before_anything_reads_it() -> None:
    reached: list[int] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        body = await receive()
        reached.append(len(body.get("body", b"")))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=BodyLimit(inner, limit=10))
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        refused = await client.post("/v1/incidents", content=b"x" * 11)
        passed = await client.post("/v1/incidents", content=b"x" * 10)
    assert refused.status_code == 413
    assert refused.json()["errors"] == [{"field": "(body)", "reason": "larger than 10 bytes"}]
    assert passed.status_code == 204
    assert reached == [10]  # the refused body never reached the service


def test_a_name_ruled_out_by_its_bounds_is_one_that_could_not_match() -> None:
    # The seed's name pools, each name beside typos and reorderings of others: wherever the full
    # comparison reaches the threshold, the bounded one gives the same figure; elsewhere 0.0.
    from bench.seed import FIRST, LAST

    rng = random.Random(11)
    names = [
        normalise_name(f"{rng.choice(FIRST)} {rng.choice(FIRST)} {rng.choice(LAST)}") for _ in range(120)
    ]
    variants = [n[:i] + n[i + 1 :] for n in names[:40] for i in (2, 5)]
    variants += [" ".join(reversed(n.split())) for n in names[:40]] + [n + "I" for n in names[:40]]
    pool = names + variants
    close = 0
    for a in pool:
        for b in [*rng.sample(pool, 40), a]:
            full = domain.name_similarity(a, b)
            bounded = domain.name_similarity(a, b, at_least=domain.FUZZY_THRESHOLD)
            assert bounded == (full if full >= domain.FUZZY_THRESHOLD else 0.0), (a, b)
            close += full >= domain.FUZZY_THRESHOLD
    assert close > len(pool)  # itself, and more: both sides of the threshold were compared
