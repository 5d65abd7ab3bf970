"""The evacuee machine: where each worker of an evacuation stands, and which way that may move.

Plain Python, no I/O; the service (service.py) moves the per-worker documents with these rules.
"""

from __future__ import annotations

from enum import StrEnum


class EvacueeStatus(StrEnum):
    UNACCOUNTED = "unaccounted"  # not heard of yet, or lost again
    LOCATED = "located"
    SAFE = "safe"
    IN_TRANSIT = "in_transit"
    HOME = "home"


# Accounted for: home, safe, or unaccounted and confirmed so by a supervisor (the search is over).
ACCOUNTED_FOR = frozenset({EvacueeStatus.HOME, EvacueeStatus.SAFE})
# Which way a worker's evacuation status may move, one pair a line.
EVACUEE_MOVES: frozenset[tuple[EvacueeStatus, EvacueeStatus]] = frozenset(
    {
        (EvacueeStatus.UNACCOUNTED, EvacueeStatus.LOCATED),
        (EvacueeStatus.UNACCOUNTED, EvacueeStatus.SAFE),
        (EvacueeStatus.UNACCOUNTED, EvacueeStatus.HOME),  # turned up at home on their own
        (EvacueeStatus.LOCATED, EvacueeStatus.SAFE),
        (EvacueeStatus.LOCATED, EvacueeStatus.IN_TRANSIT),
        (EvacueeStatus.LOCATED, EvacueeStatus.UNACCOUNTED),
        (EvacueeStatus.SAFE, EvacueeStatus.IN_TRANSIT),
        (EvacueeStatus.SAFE, EvacueeStatus.UNACCOUNTED),
        (EvacueeStatus.IN_TRANSIT, EvacueeStatus.HOME),
        (EvacueeStatus.IN_TRANSIT, EvacueeStatus.SAFE),  # flight cancelled, back in a shelter
        (EvacueeStatus.LOCATED, EvacueeStatus.HOME),
        (EvacueeStatus.SAFE, EvacueeStatus.HOME),
    }
)


def evacuee_may_move(before: EvacueeStatus, after: EvacueeStatus) -> bool:
    """Whether a worker's evacuation status may go from before to after."""
    return (before, after) in EVACUEE_MOVES
