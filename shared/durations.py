"""Durations in YAML and settings: one reading everywhere.

'90s', '30m', '4h', '7d' (a number and its unit); a bare number is seconds, in every service
(escalation's stored rules carry seconds; a plan or rule file should write the unit).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HELP = "a duration like '90s', '30m', '4h' or '7d'"


def parse_duration(value: Any) -> timedelta:
    """The duration value names; ValueError naming the expected form otherwise."""
    if isinstance(value, bool):
        raise ValueError(_HELP)
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{_HELP}, not negative")
        return timedelta(seconds=value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{_HELP}, not {value!r}")
    return timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])
