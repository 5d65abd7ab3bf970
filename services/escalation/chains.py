"""The chain document: a deadline chain's frozen stages, its schedule of slots, and its firings.

Plain Python, no I/O; store.py keeps the documents built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.escalation.actions import Firing, build_firing
from services.escalation.ruleset import Deadline, EventMatch, Incoming


@dataclass(frozen=True)
class Slot:
    """One firing of a chain: a stage, which repeat, when (seconds after the start), what."""

    stage: int
    repeat: int
    offset: int
    actions: list[dict[str, Any]]

    @property
    def label(self) -> str:
        return f"s{self.stage}r{self.repeat}"


def schedule(stages: list[dict[str, Any]]) -> list[Slot]:
    """Flatten frozen stages (JSON form) into slots; each stage waits from the previous one's last slot."""
    out: list[Slot] = []
    at = 0
    for stage_no, stage in enumerate(stages):
        at += int(stage.get("after", 0))
        out.append(Slot(stage_no, 0, at, stage["actions"]))
        repeat = stage.get("repeat")
        if repeat:
            for repeat_no in range(1, int(repeat["times"]) + 1):
                at += int(repeat["every"])
                out.append(Slot(stage_no, repeat_no, at, stage["actions"]))
    return out


def frozen_stages(deadline: Deadline) -> list[dict[str, Any]]:
    """The stages as plain data, copied into a chain when it starts (later rule edits don't touch it)."""
    return [s.model_dump(mode="json", exclude_none=True) for s in deadline.stages]


def frozen_until(deadline: Deadline) -> list[dict[str, Any]]:
    """The ending events as plain data, copied into a chain when it starts."""
    return [u.model_dump(mode="json", by_alias=True, exclude_none=True) for u in deadline.until]


def ends_chain(until: list[dict[str, Any]], ev: Incoming) -> bool:
    """Whether an event meets a (frozen) chain's end condition."""
    return any(EventMatch.model_validate(u).test(ev) for u in until)


@dataclass
class ChainStart:
    """A deadline chain to start: everything the timer store needs, frozen."""

    id: str
    rule_id: str
    rule_version: int
    description: str
    subject: str
    trigger: str
    started_at: datetime
    stages: list[dict[str, Any]]
    until: list[dict[str, Any]]
    facts: dict[str, Any]
    trigger_at: datetime | None = None  # the triggering event's time: a newer trigger supersedes

    @property
    def first_due(self) -> datetime:
        return self.started_at + timedelta(seconds=schedule(self.stages)[0].offset)


def slot_firing(chain: dict[str, Any], slot: Slot, at: datetime) -> Firing:
    """The firing of one chain slot (from the chain's frozen copy of its rule)."""
    return build_firing(
        rule_id=chain["rule_id"],
        rule_version=chain["rule_version"],
        stage=slot.label,
        trigger=chain["trigger"],
        subject=chain["subject"],
        actions=slot.actions,
        facts=chain["facts"],
        description=chain.get("description") or chain["rule_id"],
        at=at,
    )


def chain_doc(start: ChainStart, *, created_at: datetime) -> dict[str, Any]:
    """The stored form of a new chain: its rule's stages and ending events frozen into it."""
    return {
        "_id": start.id,
        "rule_id": start.rule_id,
        "rule_version": start.rule_version,
        "description": start.description,
        "subject": start.subject,
        "trigger": start.trigger,
        "trigger_at": start.trigger_at or start.started_at,
        "started_at": start.started_at,
        "stages": start.stages,
        "until": start.until,
        "facts": start.facts,
        "slot": 0,
        "slots": len(schedule(start.stages)),
        "due_at": start.first_due,
        "state": "pending",
        "created_at": created_at,
    }


def late_slots(chain: dict[str, Any], met_at: datetime) -> list[Slot]:
    """The slots of a chain that fired although its deadline was met (due after `met_at`)."""
    started = chain["started_at"]
    fired = schedule(chain["stages"])[: int(chain.get("slot", 0))]
    return [sl for sl in fired if started + timedelta(seconds=sl.offset) > met_at]
