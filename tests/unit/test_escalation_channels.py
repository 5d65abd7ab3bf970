"""The channel file: validation, routing by recipient, rule, region and level, the signature."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.escalation import channels
from shared.events.escalation import ActionKind, EscalationAction

FILE = """
contacts:
  desk: {email: [desk@lindungi.test]}
  gulf: {email: [gulf@lindungi.test]}
  director: {email: [director@lindungi.test]}
routes:
  - {to: supervisor, contacts: [desk]}
  - {to: supervisor, regions: [middle_east], contacts: [gulf]}
  - {to: supervisor, levels: [2, 3], rules: [death-remains], contacts: [director]}
"""


def action(country: str, level: int | None, rule: str = "critical-ack-1h") -> EscalationAction:
    return EscalationAction(
        action_id="a1",
        rule_id=rule,
        rule_version=1,
        kind=ActionKind.NOTIFY,
        case_id="c1",
        level=level,
        notify="supervisor",
        reason="r",
        fired_at=datetime(2026, 1, 5, tzinfo=UTC),
        country=country,
    )


def test_the_default_channel_file_is_valid() -> None:
    got = channels.load_channels(channels.DEFAULT_CHANNELS.read_text())
    assert "satgas-tppo" in got.contacts and got.contacts["satgas-tppo"].channel == "webhook"


def test_routes_add_contacts_by_region_level_and_rule() -> None:
    c = channels.load_channels(FILE)
    assert [n.contact for n in channels.route(c, action("MY", 1))] == ["desk"]
    assert [n.contact for n in channels.route(c, action("SA", 1))] == ["desk", "gulf"]
    assert [n.contact for n in channels.route(c, action("SA", 2, "death-remains"))] == [
        "desk",
        "gulf",
        "director",
    ]
    assert [n.contact for n in channels.route(c, action("MY", 2))] == ["desk"]
    ids = {n.id for n in channels.route(c, action("SA", 1))}
    assert ids == {n.id for n in channels.route(c, action("SA", 1))} and len(ids) == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("contacts: {a: {email: [x@y.z]}}\nroutes: [{to: s, contacts: [b]}]", "unknown contact 'b'"),
        ("contacts: {a: {email: [not-an-address]}}\nroutes: []", "not an email address"),
        ("contacts: {a: {webhook: {url: 'http://h/x?case={id}', secret: s}}}\nroutes: []", "no query"),
        ("contacts: {a: {email: [x@y.z], webhook: {url: 'http://h/x', secret: s}}}\nroutes: []", "either"),
        ("contacts: {}\nroutes: [{to: s, regions: [mars], contacts: []}]", "regions"),
    ],
)
def test_a_bad_channel_file_is_refused_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(channels.InvalidChannels, match=reason):
        channels.load_channels(text)


def test_the_signature_covers_the_time_and_the_body() -> None:
    body = b'{"a":1}'
    header = channels.signature("s", body, 1700000000)
    assert channels.verify("s", body, header)
    assert not channels.verify("s", b'{"a":2}', header)
    assert not channels.verify("s", body, header.replace("t=1700000000", "t=1700000001"))
