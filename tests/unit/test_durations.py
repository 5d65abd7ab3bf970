"""One reading of a duration in every service (a bare number was seconds in escalation and hours
in repatriation)."""

from datetime import timedelta

import pytest

from services.escalation import ruleset as escalation_ruleset
from services.repatriation import domain as repatriation
from shared.durations import parse_duration


def test_units_and_bare_numbers_read_the_same_everywhere() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration(" 4h ") == timedelta(hours=4)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(3600) == timedelta(hours=1)  # seconds, never hours
    assert escalation_ruleset.duration_seconds(3600) == 3600 == escalation_ruleset.duration_seconds("1h")
    assert repatriation.parse_duration(3600) == timedelta(hours=1) == repatriation.parse_duration("1h")


@pytest.mark.parametrize("bad", ["soon", "4 hours", "-5m", -1, True, "1.5h", ""])
def test_anything_else_is_refused_saying_what_is_expected(bad: object) -> None:
    with pytest.raises(ValueError, match="a duration like"):
        parse_duration(bad)
