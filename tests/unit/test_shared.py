"""The shared mechanisms, without I/O."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import logs
from shared.clock import ManualClock
from shared.envelope import EVENT_TYPES, Envelope, UnknownEventType
from shared.errors import describe, field_errors
from shared.events.casework import CaseOpened
from shared.events.intake import IncidentAccepted
from shared.mongo import applied_once, merge_updates
from shared.outbox import Outbox
from shared.pii import Vault
from shared.settings import Settings
from shared.topics import CATALOG

ROOT = Path(__file__).resolve().parents[2]


def accepted() -> IncidentAccepted:
    return IncidentAccepted(
        incident_id="i1",
        mission_id="kbri-seoul",
        country="KR",
        category="illness",
        severity="low",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        reported_at=datetime(2026, 1, 2, tzinfo=UTC),
        worker_key="w1",
    )


def test_envelope_round_trips_with_cloudevents_attributes() -> None:
    env = Envelope.wrap(accepted(), source="lindungi/intake", subject="i1", clock=ManualClock())
    raw = json.loads(env.model_dump_json())
    assert raw["specversion"] == "1.0"
    assert raw["type"] == "lindungi.intake.incident.accepted.v1"
    assert {"id", "source", "subject", "time", "data"} <= raw.keys()
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again.payload() == accepted()


def test_unknown_type_and_invalid_payload_are_told_apart() -> None:
    env = Envelope.wrap(accepted(), source="s", subject="x", clock=ManualClock())
    with pytest.raises(UnknownEventType):
        env.model_copy(update={"type": "lindungi.nobody.v1"}).payload()
    bad = env.model_copy(update={"data": {**env.data, "severity": "apocalyptic"}})
    with pytest.raises(ValidationError) as err:
        bad.payload()
    assert "apocalyptic" not in describe(err.value)
    assert field_errors(err.value)[0]["field"] == "severity"


def test_every_event_type_is_versioned_and_on_a_catalog_topic() -> None:
    names = {t.name for t in CATALOG}
    assert EVENT_TYPES
    for name, cls in EVENT_TYPES.items():
        assert name.startswith("lindungi.") and name.rsplit(".", 1)[1].startswith("v"), name
        assert cls.topic.name in names


def test_outbox_folds_events_into_the_same_write() -> None:
    box = Outbox(source="lindungi/casework", clock=ManualClock())
    opened = CaseOpened(
        case_id="c1",
        incident_id="i1",
        worker_key="w",
        mission_id="m",
        country="KR",
        category="illness",
        severity="low",
        priority=0,
        opened_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    entry = box.entry(opened, key="c1")
    assert entry["topic"] == "casework.cases.v1" and entry["key"] == "c1"
    doc = box.on_insert({"_id": "c1"}, [entry])
    assert doc["_outbox"] == [entry] and doc["_outbox_pending"] is True
    update = box.on_update({"$set": {"status": "triaged"}}, [entry])
    assert update == {
        "$set": {"status": "triaged", "_outbox_pending": True},
        "$push": {"_outbox": {"$each": [entry]}},
    }
    assert box.on_update({"$set": {"a": 1}}, []) == {"$set": {"a": 1}}


def test_applied_once_and_merge() -> None:
    flt, upd = applied_once("e1")
    assert flt == {"_applied": {"$ne": "e1"}}
    merged = merge_updates({"$set": {"a": 1}}, upd, {"$set": {"b": 2}})
    assert merged["$set"] == {"a": 1, "b": 2}
    assert merged["$push"]["_applied"]["$each"] == ["e1"]


def test_vault_encrypts_and_finds_by_keyed_hash() -> None:
    vault = Vault("secret-one")
    token = vault.encrypt("nik", "3174 0123 4567 8901")
    assert "3174012345678901" not in token
    assert vault.decrypt("nik", token) == "3174012345678901"
    assert vault.lookup_hash("nik", "3174-0123-4567-8901") == vault.lookup_hash("nik", "3174012345678901")
    assert vault.lookup_hash("nik", "3174012345678901") != Vault("secret-two").lookup_hash(
        "nik", "3174012345678901"
    )
    assert vault.lookup_hash("nik", "1") != vault.lookup_hash("passport", "1")


def test_log_lines_mask_nik_and_passport_numbers() -> None:
    fmt = logs.JsonFormatter("test")
    rec = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "worker %s passport %s", ("3174012345678901", "B1234567"), None
    )
    line = fmt.format(rec)
    assert "3174012345678901" not in line and "B1234567" not in line
    assert json.loads(line)["message"] == "worker [redacted] passport [redacted]"


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(hours=1)) == datetime(2026, 1, 1, 1, tzinfo=UTC)


def test_settings_namespace_isolates_names() -> None:
    s = Settings(namespace="t1_", kafka_bootstrap_servers="k:1", mongodb_uri="mongodb://m/")
    assert s.topic("intake.incidents.v1") == "t1_intake.incidents.v1"
    assert s.database("casework") == "t1_lindungi_casework"


def test_endpoints_given_by_field_name_win_over_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("MONGODB_URI", raising=False)
    s = Settings(kafka_bootstrap_servers="k:29092", mongodb_uri="mongodb://m:28017/")
    assert (s.kafka_bootstrap_servers, s.mongodb_uri) == ("k:29092", "mongodb://m:28017/")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    assert Settings().kafka_bootstrap_servers == "env:9092"


def test_strict_json_names_duplicates_depth_and_parse_errors() -> None:
    from shared.strictjson import nesting_depth, problem

    assert problem(b'{"a": 1, "b": {"a": 2}}') is None
    assert problem(b'{"a": 1, "a": 2}') == (
        422,
        {"field": "a", "reason": "appears twice in one object; send each field once"},
    )
    assert nesting_depth(b'{"x": "[[[[{{{{"}') == 1  # brackets inside strings do not count
    assert nesting_depth(b'{"x": "\\\\", "y": [[1]]}') == 3
    status, error = problem(b"[" * 100 + b"]" * 100) or (0, {})
    assert status == 422 and "nested deeper" in error["reason"]
    status, error = problem(b'{"a": }') or (0, {})
    assert status == 400 and "at byte 6" in error["reason"]
