"""intake on the real broker and database: matching, non-procedural, repeats, jurisdiction, both doors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from shared import topics
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.intake import IncidentReport, IncidentSubmitted
from shared.settings import Settings
from tests.support.harness import envelopes, eventually, produce, read_topic, running
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

SEOUL = bearer("kbri-seoul")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
ACCEPTED = "lindungi.intake.incident.accepted.v1"


def incident(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "country": "KR",
        "place": "Ulsan",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
        "narrative": "Wages unpaid for three months.",
        "worker": {"passport_number": "C1234567"},
        "reporter": {"name": "Rudi Hartono", "phone": "+82 2 783 5675"},
    }
    return {**base, **over}


@pytest.fixture
async def intake_db(settings: Settings) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    yield client[settings.database("intake")]
    await client.close()


async def accepted_events(settings: Settings, count: int) -> list[dict[str, Any]]:
    records = await read_topic(settings, topics.INCIDENTS.name, min_count=count)
    return [e for e in envelopes(records) if e["type"] == ACCEPTED]


async def test_departure_then_incident_matched_by_passport(settings: Settings, intake_db: Any) -> None:
    clock = ManualClock(NOW)
    async with (
        running(registry_app(settings, clock)) as registry,
        running(intake_app(settings, clock)) as intake,
    ):
        dep = (await registry.post("/v1/departures", json=departure(), headers=OPERATOR)).json()

        async def projected() -> int:
            return await intake_db["departures"].count_documents({"_id": dep["departure_id"]})

        await eventually(projected)
        r = await intake.post("/v1/incidents", json=incident(), headers=SEOUL)
        assert r.status_code == 202, r.text
        got = r.json()
        assert got["match"] == {
            "worker_id": dep["worker_id"],
            "method": "passport",
            "confidence": 1.0,
            "non_procedural": False,
        }
        assert (got["non_procedural"], got["departure_id"], got["worker_key"]) == (
            False,
            dep["departure_id"],
            dep["worker_id"],
        )
        # what the mission did not know, the registry did
        assert got["agency_id"] == "p3mi-bina-karya" and got["worker_name"] == "Siti Rahayu"

        by_name = await intake.post(
            "/v1/incidents",
            json=incident(
                worker={"full_name": "SITI  rahayu", "date_of_birth": "1994-01-05"}, category="illness"
            ),
            headers=SEOUL,
        )
        assert by_name.json()["match"]["method"] == "name_dob"
        assert by_name.json()["match"]["confidence"] == pytest.approx(0.9)

        events = await accepted_events(settings, 2)
        first = next(e for e in events if e["data"]["incident_id"] == got["incident_id"])
        assert first["data"]["match"]["method"] == "passport"
        assert first["data"]["worker_key"] == dep["worker_id"]


async def test_unregistered_worker_is_accepted_and_flagged_non_procedural(settings: Settings) -> None:
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        r = await intake.post(
            "/v1/incidents",
            json=incident(worker={"full_name": "Wati Suryani", "nik": "3201234567890123"}),
            headers=SEOUL,
        )
        assert r.status_code == 202, r.text
        got = r.json()
        assert got["non_procedural"] is True
        assert got["match"] == {
            "worker_id": None,
            "method": "none",
            "confidence": 0.0,
            "non_procedural": True,
        }
        listed = (await intake.get("/v1/incidents", params={"non_procedural": "true"}, headers=SEOUL)).json()
        assert [i["incident_id"] for i in listed] == [got["incident_id"]]
        (event,) = await accepted_events(settings, 1)
        assert event["data"]["match"]["non_procedural"] is True
        assert event["data"]["received_via"] == "http"


async def test_a_repeated_report_returns_the_first_incident(settings: Settings, intake_db: Any) -> None:
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        key = {**SEOUL, "Idempotency-Key": "sel-0001"}
        first = await intake.post("/v1/incidents", json=incident(), headers=key)
        again = await intake.post("/v1/incidents", json=incident(), headers=key)
        assert (first.status_code, again.status_code) == (202, 200)
        assert again.json()["incident_id"] == first.json()["incident_id"]
        assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)

        ref = incident(mission_reference="SEL/2026/0412", category="illness")
        one = await intake.post("/v1/incidents", json=ref, headers={**SEOUL, "Idempotency-Key": "a"})
        two = await intake.post("/v1/incidents", json=ref, headers={**SEOUL, "Idempotency-Key": "b"})
        three = await intake.post("/v1/incidents", json=ref, headers=SEOUL)
        assert one.status_code == 202 and two.status_code == three.status_code == 200
        assert one.json()["incident_id"] == two.json()["incident_id"] == three.json()["incident_id"]

        assert await intake_db["incidents"].count_documents({}) == 2
        events = await accepted_events(settings, 2)
        assert len(events) == 2


async def test_a_used_key_with_another_report_is_refused_naming_what_differs(
    settings: Settings, intake_db: Any
) -> None:
    """A data-entry slip under a used key must not hide a second report (a death, here)."""
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        key = {**SEOUL, "Idempotency-Key": "sel-0002"}
        first = await intake.post("/v1/incidents", json=incident(), headers=key)
        assert first.status_code == 202
        slip = await intake.post(
            "/v1/incidents", json=incident(category="death", severity="critical"), headers=key
        )
        assert slip.status_code == 422, slip.text
        (problem,) = slip.json()["errors"]
        assert problem["field"] == "Idempotency-Key"
        assert "category" in problem["reason"] and "severity" in problem["reason"]
        assert "narrative" not in problem["reason"]
        same = await intake.post("/v1/incidents", json=incident(), headers=key)  # a true retry
        assert same.status_code == 200 and same.json()["incident_id"] == first.json()["incident_id"]

        ref = incident(mission_reference="SEL/2026/0413")
        assert (await intake.post("/v1/incidents", json=ref, headers=SEOUL)).status_code == 202
        other = await intake.post(
            "/v1/incidents", json={**ref, "place": "Busan"}, headers={**SEOUL, "Idempotency-Key": "c"}
        )
        assert other.status_code == 422, other.text
        assert other.json()["errors"][0]["field"] == "mission_reference"
        assert "place" in other.json()["errors"][0]["reason"]

        # The Kafka door refuses the same slip into its dead-letter topic, with the reason.
        name = topics.INCIDENT_SUBMISSIONS.name
        msg = IncidentSubmitted(
            mission_id="kbri-seoul",
            idempotency_key="sel-0002",
            report=IncidentReport.model_validate(incident(category="death")),
        )
        env = Envelope(
            id="m-slip",
            source="mission-system",
            type=msg.type,
            subject="kbri-seoul",
            time=NOW,
            data=msg.model_dump(mode="json"),
        )
        await produce(settings, name, env.model_dump_json().encode(), key=b"kbri-seoul")
        (dead,) = await read_topic(settings, topics.INCIDENT_SUBMISSIONS.dlq, min_count=1, timeout=20)
        error = dict(dead.headers)["dlq-error"].decode()
        assert "already used for another report" in error and "category" in error
        assert await intake_db["incidents"].count_documents({}) == 2


async def test_cross_jurisdiction_and_unknown_credentials_are_refused(
    settings: Settings, intake_db: Any
) -> None:
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        r = await intake.post("/v1/incidents", json=incident(country="JP"), headers=SEOUL)
        assert r.status_code == 403
        assert r.json()["errors"] == [
            {"field": "country", "reason": "JP is outside this mission's jurisdiction (KR)"}
        ]
        posing = await intake.post("/v1/incidents", json=incident(mission_id="kbri-tokyo"), headers=SEOUL)
        assert posing.status_code == 403 and posing.json()["errors"][0]["field"] == "mission_id"
        assert (await intake.post("/v1/incidents", json=incident())).status_code == 401
        unknown = await intake.post(
            "/v1/incidents", json=incident(), headers={"Authorization": "Bearer dev-nobody"}
        )
        assert unknown.status_code == 401 and unknown.json()["errors"][0]["reason"] == "unknown credential"
        desk = await intake.post("/v1/incidents", json=incident(), headers=bearer("officer-ani"))
        assert desk.status_code == 403
        assert await intake_db["incidents"].count_documents({}) == 0

        # reading is bounded by jurisdiction too
        tokyo = await intake.post(
            "/v1/incidents", json=incident(country="JP", place="Tokyo"), headers=bearer("kbri-tokyo")
        )
        assert tokyo.status_code == 202
        theirs = await intake.get(f"/v1/incidents/{tokyo.json()['incident_id']}", headers=SEOUL)
        assert theirs.status_code == 403
        assert (await intake.get("/v1/incidents", headers=SEOUL)).json() == []
        officer = await intake.get(
            f"/v1/incidents/{tokyo.json()['incident_id']}", headers=bearer("officer-ani")
        )
        assert officer.status_code == 200


async def test_bad_input_is_refused_field_by_field_and_nothing_is_stored(
    settings: Settings, intake_db: Any
) -> None:
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        future = await intake.post(
            "/v1/incidents", json=incident(occurred_at="2026-11-21T09:30:00+09:00"), headers=SEOUL
        )
        assert future.status_code == 422
        assert future.json()["errors"] == [{"field": "occurred_at", "reason": "is in the future"}]
        many = await intake.post(
            "/v1/incidents",
            json=incident(
                country="KOR",
                category="robbery",
                people_affected=0,
                place="x" * 201,
                worker={"nik": "31712345"},
                reporter={"name": ""},
            ),
            headers=SEOUL,
        )
        assert many.status_code == 422
        fields = {e["field"] for e in many.json()["errors"]}
        assert fields == {"country", "category", "people_affected", "place", "worker.nik", "reporter.name"}
        assert all("31712345" not in e["reason"] for e in many.json()["errors"])  # values are never echoed
        big = await intake.post(
            "/v1/incidents",
            content=b"{" + b" " * 70_000 + b"}",
            headers={**SEOUL, "Content-Type": "application/json"},
        )
        assert big.status_code == 413
        assert await intake_db["incidents"].count_documents({}) == 0


async def test_two_missions_reporting_one_worker_and_event_are_linked(
    settings: Settings, intake_db: Any
) -> None:
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        worker = {"full_name": "Rina Marlina", "passport_number": "C4567890"}
        jb = await intake.post(
            "/v1/incidents",
            json=incident(
                country="MY", worker=worker, category="detained", occurred_at="2026-11-19T08:00:00+08:00"
            ),
            headers=bearer("kjri-johor-bahru"),
        )
        kl = await intake.post(
            "/v1/incidents",
            json=incident(
                country="MY", worker=worker, category="detained", occurred_at="2026-11-19T20:00:00+08:00"
            ),
            headers=bearer("kbri-kuala-lumpur"),
        )
        other = await intake.post(
            "/v1/incidents",
            json=incident(country="MY", worker=worker, category="illness"),
            headers=bearer("kbri-kuala-lumpur"),
        )
        assert kl.status_code == 202 and kl.json()["incident_id"] != jb.json()["incident_id"]
        assert kl.json()["linked_incident_ids"] == [jb.json()["incident_id"]]
        assert other.json()["linked_incident_ids"] == []  # another kind of event
        first = await intake_db["incidents"].find_one({"_id": jb.json()["incident_id"]})
        assert first["linked_incident_ids"] == [kl.json()["incident_id"]]
        events = await accepted_events(settings, 3)
        linked = next(e for e in events if e["data"]["incident_id"] == kl.json()["incident_id"])
        assert linked["data"]["linked_incident_ids"] == [jb.json()["incident_id"]]


def submission(mission_id: str, env_id: str, **over: Any) -> bytes:
    msg = IncidentSubmitted(mission_id=mission_id, report=IncidentReport.model_validate(incident(**over)))
    env = Envelope(
        id=env_id,
        source="mission-system",
        type=msg.type,
        subject=mission_id,
        time=NOW,
        data=msg.model_dump(mode="json"),
    )
    return env.model_dump_json().encode()


async def test_the_kafka_door_validates_like_the_http_door(settings: Settings, intake_db: Any) -> None:
    name = topics.INCIDENT_SUBMISSIONS.name
    async with running(intake_app(settings, ManualClock(NOW))) as intake:
        good = submission("kbri-seoul", "m-1")
        await produce(settings, name, good, key=b"kbri-seoul")
        await produce(settings, name, good, key=b"kbri-seoul")  # redelivered: still one incident
        await produce(settings, name, submission("kbri-seoul", "m-2", country="JP"), key=b"kbri-seoul")
        await produce(settings, name, submission("no-such-mission", "m-3"), key=b"x")
        await produce(
            settings,
            name,
            submission("kbri-seoul", "m-4", occurred_at="2026-12-25T00:00:00+09:00"),
            key=b"kbri-seoul",
        )
        bad_country = submission("kbri-seoul", "m-5").replace(b'"country":"KR"', b'"country":"Korea"')
        await produce(settings, name, bad_country, key=b"kbri-seoul")

        dead = await read_topic(settings, topics.INCIDENT_SUBMISSIONS.dlq, min_count=4, timeout=20)
        kinds = sorted(dict(r.headers)["dlq-error-kind"].decode() for r in dead)
        assert kinds == ["invalid", "rejected", "rejected", "rejected"]
        errors = " ".join(dict(r.headers)["dlq-error"].decode() for r in dead)
        assert "outside this mission's jurisdiction" in errors and "unknown mission" in errors
        assert "is in the future" in errors
        stored = await intake_db["incidents"].find({}).to_list()
        assert len(stored) == 1 and stored[0]["received_via"] == "kafka"
        (event,) = await accepted_events(settings, 1)
        assert event["data"]["incident_id"] == stored[0]["_id"]
        got = await intake.get(f"/v1/incidents/{stored[0]['_id']}", headers=SEOUL)
        assert got.json()["mission_id"] == "kbri-seoul"
