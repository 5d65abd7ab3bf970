"""The step machine and a workflow's state: statuses, the table of moves, steps, effects, changes.

Plain Python, no I/O. The commands (commands.py) move steps only through `move`, so the table
below is the whole of what a step may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.errors import Conflict
from shared.events.repatriation import RepatriationKind


class StepStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNDONE = "undone"  # was done; its effect was released (cancelled or re-routed past)
    CANCELLED = "cancelled"  # was active or pending when the workflow was cancelled


class WorkflowStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ACTIVATE = "activate"
    NOT_APPLICABLE = "not_applicable"
    COMPLETE = "complete"
    SKIP = "skip"
    FAIL = "fail"
    RETRY = "retry"
    UNDO = "undo"
    RESET = "reset"
    CANCEL = "cancel"


# The step state machine, one move a line: (status now, action) -> status after.
STEP_MOVES: dict[tuple[StepStatus, Action], StepStatus] = {
    (StepStatus.PENDING, Action.ACTIVATE): StepStatus.ACTIVE,
    (StepStatus.PENDING, Action.NOT_APPLICABLE): StepStatus.SKIPPED,
    (StepStatus.ACTIVE, Action.COMPLETE): StepStatus.DONE,
    (StepStatus.ACTIVE, Action.SKIP): StepStatus.SKIPPED,
    (StepStatus.ACTIVE, Action.FAIL): StepStatus.FAILED,
    (StepStatus.FAILED, Action.RETRY): StepStatus.ACTIVE,
    (StepStatus.FAILED, Action.SKIP): StepStatus.SKIPPED,
    (StepStatus.DONE, Action.UNDO): StepStatus.UNDONE,
    (StepStatus.DONE, Action.RESET): StepStatus.PENDING,
    (StepStatus.UNDONE, Action.RESET): StepStatus.PENDING,
    (StepStatus.SKIPPED, Action.RESET): StepStatus.PENDING,
    (StepStatus.ACTIVE, Action.RESET): StepStatus.PENDING,
    (StepStatus.FAILED, Action.RESET): StepStatus.PENDING,
    (StepStatus.PENDING, Action.CANCEL): StepStatus.CANCELLED,
    (StepStatus.ACTIVE, Action.CANCEL): StepStatus.CANCELLED,
    (StepStatus.FAILED, Action.CANCEL): StepStatus.CANCELLED,
}
# The statuses a workflow waits on: its current step is the one in either.
WAITING = (StepStatus.ACTIVE, StepStatus.FAILED)


def move(status: StepStatus, action: Action) -> StepStatus:
    """The status a step takes on an action; Conflict when the table has no such move."""
    after = STEP_MOVES.get((status, action))
    if after is None:
        raise Conflict(f"a step that is {status} cannot {action}")
    return after


class Step(BaseModel):
    """A step of one workflow and its record: who did what, when, with what evidence."""

    name: str
    owner: str
    status: StepStatus = StepStatus.PENDING
    activated_at: datetime | None = None
    due_at: datetime | None = None
    finished_at: datetime | None = None
    actor: str | None = None
    evidence: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    attempts: int = 0  # activations: 1 the first time, +1 on each retry or re-route back


class Effect(BaseModel):
    """Something a done step holds in the world (a booking, committed funds) until released."""

    step: str
    kind: str  # booking, funding
    detail: dict[str, Any] = Field(default_factory=dict)
    held_at: datetime
    released_at: datetime | None = None
    release_reason: str | None = None


class WorkflowRequest(BaseModel):
    """What a start request says, kept on its workflow: which request, who asked and why, for whom,
    where, and the facts that decide which steps apply."""

    request_id: str
    requested_by: str
    reason: str
    country: str
    case_id: str | None = None
    worker_id: str | None = None
    worker_key: str | None = None
    worker_name: str | None = None
    region: str | None = None
    home_province: str | None = None
    home_regency: str | None = None
    facts: dict[str, bool] = Field(default_factory=dict)


class Workflow(WorkflowRequest):
    """A repatriation workflow: its request, steps and effects."""

    id: str
    kind: RepatriationKind
    status: WorkflowStatus = WorkflowStatus.ACTIVE
    steps: list[Step]
    effects: list[Effect] = Field(default_factory=list)
    started_at: datetime
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    version: int = 0

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def current(self) -> Step | None:
        """The step the workflow waits on (active or failed), if any."""
        return next((s for s in self.steps if s.status in WAITING), None)


@dataclass(frozen=True)
class Change:
    """One thing that happened: a step's status, or the workflow's."""

    scope: Literal["step", "workflow"]
    status: str
    actor: str
    at: datetime
    step: str | None = None
    owner: str | None = None
    due_at: datetime | None = None
    reason: str | None = None
    evidence: tuple[str, ...] = ()
    effect: str | None = None
    attempt: int | None = None
    to_step: str | None = None


# What a command returns: the workflow after it, and the changes that led there (none: nothing to do).
Transition = tuple[Workflow, list[Change]]
