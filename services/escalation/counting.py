"""Counting rules: "at least N events with the same key within a sliding window", decided once.

Plain Python, no I/O: the ids of counter buckets, heads and windows, and which window fires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.escalation.actions import ACTION_NS, Firing, build_firing


@dataclass
class CountHit:
    """A triggering event for a counting rule: the member to add to its key's counter.

    Members are stored in buckets of `within` seconds (epoch-aligned), one document each; a
    window of `within` spans at most two adjacent buckets, so the bucket of the event and its
    two neighbours hold every member that can share a window with it (read by `_id`).
    """

    rule_id: str
    rule_version: int
    key: str
    bucket: int
    within: int
    member: str  # the event's subject (incident id) or event id
    at: datetime  # the event's time
    at_least: int
    actions: list[dict[str, Any]]
    description: str
    facts: dict[str, Any]

    def bucket_id(self, bucket: int) -> str:
        """The counter document of one bucket of this rule and key."""
        return uuid.uuid5(ACTION_NS, f"count|{self.rule_id}|{self.key}|{bucket}").hex

    @property
    def counter_id(self) -> str:
        return self.bucket_id(self.bucket)

    @property
    def counter_doc(self) -> dict[str, Any]:
        """The fields a counter bucket is made with, on first use."""
        return {"rule_id": self.rule_id, "key": self.key, "bucket": self.bucket, "at_least": self.at_least}

    @property
    def member_doc(self) -> dict[str, Any]:
        """The member this hit adds to its bucket (a set element: a redelivery adds nothing)."""
        return {"id": self.member, "at": self.at}

    @property
    def neighbours(self) -> list[str]:
        return [self.bucket_id(self.bucket - 1), self.bucket_id(self.bucket + 1)]

    def trigger_id(self, members: list[str]) -> str:
        """The trigger of one firing: the rule, the key and the members it counted (action ids)."""
        return uuid.uuid5(ACTION_NS, f"count|{self.rule_id}|{self.key}|{','.join(sorted(members))}").hex

    def window_id(self, seq: int) -> str:
        """The decision of this rule and key's `seq`-th firing (1, 2, ...): whichever members a
        replica counted, one decision per number, so two replicas with different views of the
        members cannot both fire the same firing."""
        return uuid.uuid5(ACTION_NS, f"count|{self.rule_id}|{self.key}|#{seq}").hex

    @property
    def head_id(self) -> str:
        """The document holding this rule and key's last firing number and its latest windows."""
        return uuid.uuid5(ACTION_NS, f"count-head|{self.rule_id}|{self.key}").hex


def pick_window(
    members: list[tuple[str, datetime]], consumed: set[str], *, at_least: int, within: int
) -> list[tuple[str, datetime]] | None:
    """The earliest `at_least` members not yet counted whose times lie within a span shorter than
    `within`, or None. Earliest first, so every replica that sees the same members picks the same."""
    earliest: dict[str, datetime] = {}  # a member seen twice (accepted, then matched) counts once
    for member, at in members:
        if member not in consumed and (member not in earliest or at < earliest[member]):
            earliest[member] = at
    free = sorted(earliest.items(), key=lambda m: (m[1], m[0]))
    for i in range(len(free) - at_least + 1):
        if (free[i + at_least - 1][1] - free[i][1]).total_seconds() < within:
            return free[i : i + at_least]
    return None


def bucket_of(at: datetime, within: int) -> int:
    """The bucket (epoch-aligned, `within` seconds long) an event time falls in."""
    epoch = datetime(1970, 1, 1, tzinfo=at.tzinfo)
    return int((at - epoch).total_seconds()) // within


def count_firing(hit: CountHit, window: list[tuple[str, datetime]], at: datetime) -> Firing:
    """The firing of a counting rule: `window` is the members it counted (id, time), earliest first."""
    members = [m for m, _ in window]
    return build_firing(
        rule_id=hit.rule_id,
        rule_version=hit.rule_version,
        stage=f"window:{window[0][1].isoformat()}",
        trigger=hit.trigger_id(members),
        subject=f"{hit.rule_id}:{hit.key}",
        actions=hit.actions,
        facts=hit.facts,
        description=f"{hit.description} ({len(members)} within the window: {', '.join(members[:10])})",
        at=at,
        members=members,
    )
