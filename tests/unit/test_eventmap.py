"""The event map is true: generated from what the code sends and subscribes, and kept current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services import eventmap
from shared import asyncapi
from shared.asyncapi import Receiver
from shared.clock import ManualClock
from shared.envelope import EVENT_TYPES
from shared.events.escalation import FlagRequested
from shared.outbox import Outbox
from shared.topics import CATALOG

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def found() -> list[Receiver]:
    return eventmap.receivers()


def test_committed_events_md_and_asyncapi_are_current(found: list[Receiver]) -> None:
    assert (ROOT / "docs/events.md").read_text() == eventmap.markdown(found), (
        "run: python -m services.eventmap"
    )
    assert (ROOT / "docs/asyncapi.json").read_text() == asyncapi.render(found), (
        "run: python -m services.eventmap"
    )


def test_nothing_is_published_into_a_void(found: list[Receiver]) -> None:
    for name, cls in EVENT_TYPES.items():
        assert cls.sent_by, name
        assert any(r.topic == cls.topic.name and name in r.handles for r in found), f"nobody consumes {name}"
    for topic in CATALOG:
        assert any(r.topic == topic.name for r in found), f"nobody consumes {topic.name}"


def test_asyncapi_names_every_sender_and_receiver_of_a_channel(found: list[Receiver]) -> None:
    doc = asyncapi.document(found)
    ops = doc["operations"]
    # escalation sends on registry's and repatriation's topics, not only the owners
    assert ops["escalation.send.registry.commands.v1"]["channel"] == {
        "$ref": "#/channels/registry.commands.v1"
    }
    assert "escalation.send.repatriation.requests.v1" in ops
    assert "registry.send.registry.commands.v1" not in ops
    receivers = {k for k, v in ops.items() if v["action"] == "receive" and "registry.departures.v1" in k}
    assert receivers == {
        "escalation.receive.registry.departures.v1",
        "intake.receive.registry.departures.v1",
        "repatriation.receive.registry.departures.v1",
    }
    assert "casework.mission-requests.v1" not in doc["channels"]
    json.dumps(doc)  # serialisable as written


def test_an_outbox_refuses_an_event_its_service_is_not_named_to_send() -> None:
    flag = FlagRequested(
        action_id="x1",
        subject_kind="agency",
        subject_id="a1",
        rule_id="agency-pattern-30d",
        reason="three incidents in 30 days",
        requested_at=ManualClock().now(),
    )
    assert Outbox(source="lindungi/escalation", clock=ManualClock()).entry(flag, key="a1")["topic"]
    with pytest.raises(ValueError, match="sent_by"):
        Outbox(source="lindungi/registry", clock=ManualClock()).entry(flag, key="a1")
