"""Repatriation workflows as plain Python: plans (step lists as data), state machines, rules. No I/O.

Every command takes a workflow and returns the workflow after it plus the changes it caused
(`Change`), which the service turns into events, timeline entries and one document write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.durations import parse_duration
from shared.errors import Conflict
from shared.events.repatriation import RepatriationKind

# ---------------------------------------------------------------- plans (the YAML files, parsed)

OWNERS = ("mission", "desk", "debarkation", "region", "system")
EFFECT_UNDONE = {"booking": "booking released", "funding": "funding returned"}


@dataclass(frozen=True)
class StepDef:
    """One step of a plan, as the YAML file states it."""

    name: str
    owner: str
    due: timedelta
    when: str | None = None  # a fact; false means "not applicable", skipped on activation
    skippable: bool = False
    evidence: bool = False
    requires: dict[str, Any] = field(default_factory=dict)
    undo: str | None = None  # "booking" or "funding": the effect completing it holds
    reroute_target: bool = False
    on_event: str | None = None


@dataclass(frozen=True)
class Plan:
    """A workflow kind's ordered steps."""

    kind: RepatriationKind
    steps: tuple[StepDef, ...]
    point_of_no_return: str | None = None

    def step(self, name: str) -> StepDef | None:
        return next((s for s in self.steps if s.name == name), None)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name)


def parse_plan(data: dict[str, Any]) -> Plan:
    """A plan from its YAML data; raises ValueError on a malformed plan."""
    kind = RepatriationKind(data["kind"])
    steps = []
    for raw in data["steps"]:
        owner = raw["owner"]
        if owner not in OWNERS:
            raise ValueError(f"step {raw['name']}: unknown owner {owner!r}")
        undo = raw.get("undo")
        if undo is not None and undo not in EFFECT_UNDONE:
            raise ValueError(f"step {raw['name']}: unknown undo {undo!r}")
        steps.append(
            StepDef(
                name=raw["name"],
                owner=owner,
                due=parse_duration(raw.get("due", "24h")),  # shared.durations
                when=raw.get("when"),
                skippable=bool(raw.get("skippable", False)),
                evidence=bool(raw.get("evidence", False)),
                requires=dict(raw.get("requires") or {}),
                undo=undo,
                reroute_target=bool(raw.get("reroute_target", False)),
                on_event=raw.get("on_event"),
            )
        )
    names = [s.name for s in steps]
    if len(set(names)) != len(names) or names[-1] != "completed":
        raise ValueError(f"plan {kind}: step names must be unique and end with 'completed'")
    ponr = data.get("point_of_no_return")
    if ponr is not None and ponr not in names:
        raise ValueError(f"plan {kind}: point_of_no_return {ponr!r} is not a step")
    return Plan(kind=kind, steps=tuple(steps), point_of_no_return=ponr)


# ---------------------------------------------------------------- state


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


S, A = StepStatus, Action
# The step state machine, one move a line: (status now, action) -> status after.
STEP_MOVES: dict[tuple[StepStatus, Action], StepStatus] = {
    (S.PENDING, A.ACTIVATE): S.ACTIVE,
    (S.PENDING, A.NOT_APPLICABLE): S.SKIPPED,
    (S.ACTIVE, A.COMPLETE): S.DONE,
    (S.ACTIVE, A.SKIP): S.SKIPPED,
    (S.ACTIVE, A.FAIL): S.FAILED,
    (S.FAILED, A.RETRY): S.ACTIVE,
    (S.FAILED, A.SKIP): S.SKIPPED,
    (S.DONE, A.UNDO): S.UNDONE,
    (S.DONE, A.RESET): S.PENDING,
    (S.UNDONE, A.RESET): S.PENDING,
    (S.SKIPPED, A.RESET): S.PENDING,
    (S.ACTIVE, A.RESET): S.PENDING,
    (S.FAILED, A.RESET): S.PENDING,
    (S.PENDING, A.CANCEL): S.CANCELLED,
    (S.ACTIVE, A.CANCEL): S.CANCELLED,
    (S.FAILED, A.CANCEL): S.CANCELLED,
}


class Invalid(Exception):
    """The command's data is wrong, field by field (HTTP 422)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


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


class Workflow(BaseModel):
    """A repatriation workflow: its request, facts, steps and effects."""

    id: str
    kind: RepatriationKind
    status: WorkflowStatus = WorkflowStatus.ACTIVE
    case_id: str | None = None
    worker_id: str | None = None
    worker_key: str | None = None
    worker_name: str | None = None
    country: str
    region: str | None = None
    home_province: str | None = None
    home_regency: str | None = None
    facts: dict[str, bool] = Field(default_factory=dict)
    request_id: str
    requested_by: str
    reason: str
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
        return next((s for s in self.steps if s.status in (StepStatus.ACTIVE, StepStatus.FAILED)), None)


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


Decision = tuple[Workflow, list[Change]]

# ---------------------------------------------------------------- commands


def start(
    plan: Plan,
    *,
    id: str,
    request_id: str,
    requested_by: str,
    actor: str,
    reason: str,
    country: str,
    now: datetime,
    case_id: str | None = None,
    worker_id: str | None = None,
    worker_key: str | None = None,
    worker_name: str | None = None,
    region: str | None = None,
    home_province: str | None = None,
    home_regency: str | None = None,
    facts: dict[str, bool] | None = None,
) -> Decision:
    """A new workflow: the first step (the request itself) done, the next one active."""
    steps = [Step(name=s.name, owner=s.owner) for s in plan.steps]
    first = steps[0]
    first.status, first.activated_at, first.finished_at = StepStatus.DONE, now, now
    first.actor, first.reason, first.attempts = actor, reason, 1
    wf = Workflow(
        id=id,
        kind=plan.kind,
        case_id=case_id,
        worker_id=worker_id,
        worker_key=worker_key,
        worker_name=worker_name,
        country=country.upper(),
        region=region,
        home_province=home_province,
        home_regency=home_regency,
        facts=dict(facts or {}),
        request_id=request_id,
        requested_by=requested_by,
        reason=reason,
        steps=steps,
        started_at=now,
    )
    changes = [
        Change("workflow", "started", actor, now, reason=reason),
        Change("step", "done", actor, now, step=first.name, owner=first.owner, reason=reason),
    ]
    return _advance(plan, wf, changes, now)


def complete(
    plan: Plan,
    wf: Workflow,
    *,
    step: str,
    actor: str,
    now: datetime,
    evidence: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> Decision:
    """The owner reports the step done, with its evidence and data; the next step becomes active."""
    s, d = _current(plan, wf, step)
    if s.status != StepStatus.ACTIVE:
        raise Conflict(f"step {step} is {s.status}: only an active step can be completed")
    evidence, data = list(evidence or []), dict(data or {})
    errors = validate_completion(d, wf.facts, evidence, data)
    if errors:
        raise Invalid(errors)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.COMPLETE)
    s.finished_at, s.actor, s.evidence, s.data, s.reason = now, actor, evidence, data, None
    if d.undo:
        wf.effects.append(Effect(step=step, kind=d.undo, detail=data, held_at=now))
    changes = [Change("step", "done", actor, now, step=step, owner=s.owner, evidence=tuple(evidence))]
    return _advance(plan, wf, changes, now)


def skip(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Decision:
    """A step that does not apply is skipped with a reason; the next step becomes active."""
    s, d = _current(plan, wf, step)
    if not d.skippable:
        raise Conflict(f"step {step} cannot be skipped")
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.SKIP)
    s.finished_at, s.actor, s.reason = now, actor, reason
    changes = [Change("step", "skipped", actor, now, step=step, owner=s.owner, reason=reason)]
    return _advance(plan, wf, changes, now)


def fail(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Decision:
    """The owner reports the step failed; the workflow waits for a retry, a skip, a re-route or a cancel."""
    s, _ = _current(plan, wf, step)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.FAIL)
    s.actor, s.reason = actor, reason
    return wf, [Change("step", "failed", actor, now, step=step, owner=s.owner, reason=reason)]


def retry(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Decision:
    """A failed step is tried again, with a fresh deadline."""
    s, d = _current(plan, wf, step)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.RETRY)
    s.attempts += 1
    s.activated_at, s.due_at, s.actor, s.reason = now, now + d.due, actor, reason
    return wf, [
        Change("step", "retried", actor, now, step=step, owner=s.owner, reason=reason, attempt=s.attempts),
        Change("step", "active", actor, now, step=step, owner=s.owner, due_at=s.due_at, attempt=s.attempts),
    ]


def reroute(plan: Plan, wf: Workflow, *, to_step: str, actor: str, reason: str, now: datetime) -> Decision:
    """Send the workflow back to an earlier step (e.g. a different flight), undoing what lies between."""
    _ensure_active(wf)
    d = plan.step(to_step)
    if d is None or not d.reroute_target:
        targets = [s.name for s in plan.steps if s.reroute_target]
        raise Invalid([{"field": "to_step", "reason": f"can re-route only to one of: {', '.join(targets)}"}])
    _ensure_before_point_of_no_return(plan, wf, "re-routed")
    cur = wf.current
    if cur is None or plan.index(cur.name) < plan.index(to_step):
        raise Conflict(f"step {to_step} lies ahead of the workflow: nothing to re-route")
    wf = wf.model_copy(deep=True)
    changes = [Change("workflow", "rerouted", actor, now, reason=reason, to_step=to_step)]
    lo, hi = plan.index(to_step), plan.index(cur.name)
    for i in range(hi, lo - 1, -1):  # latest first, as one would unwind them by hand
        s = wf.steps[i]
        changes += _release(wf, s, actor=actor, reason=f"re-routed to {to_step}: {reason}", now=now)
        if s.status in (StepStatus.ACTIVE, StepStatus.FAILED):
            changes.append(
                Change(
                    "step", "undone", actor, now, step=s.name, owner=s.owner, reason=f"re-routed: {reason}"
                )
            )
        if s.status != StepStatus.PENDING:
            s.status = move(s.status, Action.RESET)
        s.finished_at, s.due_at = None, None
    return _advance(plan, wf, changes, now)


def cancel(plan: Plan, wf: Workflow, *, actor: str, reason: str, now: datetime) -> Decision:
    """Stop the workflow for a reason, undoing every effect its steps hold, visibly."""
    _ensure_active(wf)
    _ensure_before_point_of_no_return(plan, wf, "cancelled")
    wf = wf.model_copy(deep=True)
    changes: list[Change] = []
    for s in reversed(wf.steps):
        changes += _release(wf, s, actor=actor, reason=f"cancelled: {reason}", now=now)
        if s.status in (StepStatus.PENDING, StepStatus.ACTIVE, StepStatus.FAILED):
            s.status = move(s.status, Action.CANCEL)
            s.due_at = None
    wf.status, wf.cancelled_at, wf.cancel_reason = WorkflowStatus.CANCELLED, now, reason
    changes.append(Change("workflow", "cancelled", actor, now, reason=reason))
    return wf, changes


def set_home_province(
    plan: Plan, wf: Workflow, *, province: str, actor: str, reason: str, now: datetime
) -> Decision:
    """Set or correct the worker's home province: region-owned steps belong to its region."""
    _ensure_active(wf)
    if wf.kind == "evacuation":
        raise Conflict("an evacuation has no single worker: set the province on each worker's workflow")
    if wf.home_province == province:
        return wf, []
    before = wf.home_province or "unknown"
    wf = wf.model_copy(deep=True)
    wf.home_province = province
    why = f"{before} -> {province}: {reason}"
    return wf, [Change("workflow", "home_province_set", actor, now, reason=why)]


def all_accounted_for(plan: Plan, wf: Workflow, *, now: datetime, reason: str) -> Decision:
    """Every worker of an evacuation is accounted for: the steps left are done with, and it completes."""
    if wf.status != WorkflowStatus.ACTIVE:
        return wf, []
    wf = wf.model_copy(deep=True)
    changes: list[Change] = []
    for s in wf.steps:
        action = {StepStatus.PENDING: Action.NOT_APPLICABLE}.get(s.status, Action.SKIP)
        if s.name == "completed" or s.status not in (
            StepStatus.PENDING,
            StepStatus.ACTIVE,
            StepStatus.FAILED,
        ):
            continue
        s.status = move(s.status, action)
        s.finished_at, s.actor, s.reason, s.due_at = now, "system", reason, None
        changes.append(Change("step", "skipped", "system", now, step=s.name, owner=s.owner, reason=reason))
    return _advance(plan, wf, changes, now)


def on_event(
    plan: Plan, wf: Workflow, *, event: str, actor: str, now: datetime, evidence: list[str]
) -> Decision:
    """Another service's event completes the active step waiting for it; otherwise nothing changes."""
    cur = wf.current
    if wf.status != WorkflowStatus.ACTIVE or cur is None or cur.status != StepStatus.ACTIVE:
        return wf, []
    d = plan.step(cur.name)
    if d is None or d.on_event != event:
        return wf, []
    wf = wf.model_copy(deep=True)
    s = _get(wf, cur.name)
    s.status = move(s.status, Action.COMPLETE)
    s.finished_at, s.actor, s.evidence = now, actor, list(evidence)
    changes = [Change("step", "done", actor, now, step=s.name, owner=s.owner, evidence=tuple(evidence))]
    return _advance(plan, wf, changes, now)


# ---------------------------------------------------------------- rules


def validate_completion(
    d: StepDef, facts: dict[str, bool], evidence: list[str], data: dict[str, Any]
) -> list[dict[str, str]]:
    """What is missing or wrong in a step's completion, field by field."""
    errors: list[dict[str, str]] = []
    if d.evidence and not [e for e in evidence if e.strip()]:
        errors.append({"field": "evidence", "reason": "cite at least one document reference"})
    for name, kind in d.requires.items():
        value = data.get(name)
        f = f"data.{name}"
        if value is None or value == "":
            errors.append({"field": f, "reason": "required"})
        elif isinstance(kind, list) and value not in kind:
            errors.append({"field": f, "reason": f"must be one of: {', '.join(map(str, kind))}"})
        elif kind == "bool" and not isinstance(value, bool):
            errors.append({"field": f, "reason": "must be true or false"})
        elif kind in ("text", "time") and not isinstance(value, str):
            errors.append({"field": f, "reason": "must be a string"})
        elif kind == "time" and not _is_aware_iso(value):
            errors.append({"field": f, "reason": "must be an ISO 8601 time with its offset"})
    # The domain's own rules, beyond the shapes above.
    if d.name == "travel_document" and facts.get("passport_missing") and data.get("document") == "passport":
        errors.append(
            {"field": "data.document", "reason": "the passport is missing or withheld: an SPLP is needed"}
        )
    if d.name == "handed_over" and facts.get("has_family") is False and data.get("received_by") == "family":
        errors.append(
            {"field": "data.received_by", "reason": "no family is known: hand over to social_affairs"}
        )
    return errors


def _is_aware_iso(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def authorise(
    action: str,
    *,
    owner: str,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> str | None:
    """Why the caller may not take this action on a step owned by `owner`, or None when they may.

    complete and fail belong to the step's owner; skip and retry to the owner or the desk;
    cancel and re-route to the desk or the mission of the host country.
    """
    desk = bool(roles & {"officer", "supervisor"})
    mission_here = "mission" in roles and country.upper() in countries
    if "mission" in roles and not mission_here:
        return f"the workflow is in {country}, outside this mission's jurisdiction"
    is_owner = {
        "mission": mission_here,
        "desk": desk,
        "debarkation": "debarkation" in roles,
        "region": "region" in roles and home_province is not None and home_province in provinces,
        "system": False,
    }[owner]
    if action in ("cancel", "reroute", "start"):
        return None if desk or mission_here else "only the desk or the host country's mission may do this"
    if action in ("skip", "retry") and (is_owner or desk):
        return None
    if is_owner:
        return None
    if owner == "region" and "region" in roles:
        return f"the worker's home province ({home_province or 'unknown'}) is not one of this region's"
    return f"step is owned by {owner}"


STEP_ACTIONS = ("complete", "fail", "retry", "skip")
# The step's statuses each step action fits (the STEP_MOVES it may take).
ACTION_FITS = {
    "complete": (StepStatus.ACTIVE,),
    "fail": (StepStatus.ACTIVE,),
    "retry": (StepStatus.FAILED,),
    "skip": (StepStatus.ACTIVE, StepStatus.FAILED),
}


def available_step_actions(
    plan: Plan,
    *,
    status: str,
    step: str | None,
    step_status: str | None,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> list[str]:
    """The actions the caller may take on the workflow's current step now (the same checks as the
    commands: state, skippable, owner)."""
    d = plan.step(step) if step else None
    if status != WorkflowStatus.ACTIVE or d is None or step_status is None:
        return []
    out = []
    for action in STEP_ACTIONS:
        if StepStatus(step_status) not in ACTION_FITS[action] or (action == "skip" and not d.skippable):
            continue
        why = authorise(
            action,
            owner=d.owner,
            roles=roles,
            countries=countries,
            provinces=provinces,
            country=country,
            home_province=home_province,
        )
        if why is None:
            out.append(action)
    return out


def may_set_home_province(*, kind: str, status: str, roles: frozenset[str]) -> bool:
    """Whether the caller may set the worker's home province now (the desk, on a live workflow)."""
    return (
        status == WorkflowStatus.ACTIVE and kind != "evacuation" and bool(roles & {"officer", "supervisor"})
    )


def workflow_actions(
    plan: Plan,
    *,
    status: str,
    steps: list[dict[str, Any]],
    current: str | None,
    roles: frozenset[str],
    countries: frozenset[str],
    provinces: frozenset[str],
    country: str,
    home_province: str | None,
) -> dict[str, Any]:
    """Whether the caller may cancel the workflow now, and the steps it may re-route it back to
    (the same checks as cancel and reroute: active, before the point of no return, desk or the
    host country's mission)."""
    none: dict[str, Any] = {"cancel": False, "reroute_to": []}
    if status != WorkflowStatus.ACTIVE:
        return none
    why = authorise(
        "cancel",
        owner="desk",
        roles=roles,
        countries=countries,
        provinces=provinces,
        country=country,
        home_province=home_province,
    )
    ponr = plan.point_of_no_return
    if why is not None or any(s["name"] == ponr and s["status"] == StepStatus.DONE for s in steps):
        return none
    back = [
        d.name
        for d in plan.steps
        if d.reroute_target and current is not None and plan.index(d.name) <= plan.index(current)
    ]
    return {"cancel": True, "reroute_to": back}


# ---------------------------------------------------------------- evacuees


class EvacueeStatus(StrEnum):
    UNACCOUNTED = "unaccounted"  # not heard of yet, or lost again
    LOCATED = "located"
    SAFE = "safe"
    IN_TRANSIT = "in_transit"
    HOME = "home"


E = EvacueeStatus
# Accounted for: home, safe, or unaccounted and confirmed so by a supervisor (the search is over).
ACCOUNTED_FOR = frozenset({E.HOME, E.SAFE})
# Which way a worker's evacuation status may move, one pair a line.
EVACUEE_MOVES: frozenset[tuple[EvacueeStatus, EvacueeStatus]] = frozenset(
    {
        (E.UNACCOUNTED, E.LOCATED),
        (E.UNACCOUNTED, E.SAFE),
        (E.UNACCOUNTED, E.HOME),  # turned up at home on their own
        (E.LOCATED, E.SAFE),
        (E.LOCATED, E.IN_TRANSIT),
        (E.LOCATED, E.UNACCOUNTED),
        (E.SAFE, E.IN_TRANSIT),
        (E.SAFE, E.UNACCOUNTED),
        (E.IN_TRANSIT, E.HOME),
        (E.IN_TRANSIT, E.SAFE),  # flight cancelled, back in a shelter
        (E.LOCATED, E.HOME),
        (E.SAFE, E.HOME),
    }
)


def evacuee_may_move(before: EvacueeStatus, after: EvacueeStatus) -> bool:
    """Whether a worker's evacuation status may go from before to after."""
    return (before, after) in EVACUEE_MOVES


# ---------------------------------------------------------------- helpers


def _ensure_active(wf: Workflow) -> None:
    if wf.status != WorkflowStatus.ACTIVE:
        raise Conflict(f"the workflow is {wf.status}")


def _ensure_before_point_of_no_return(plan: Plan, wf: Workflow, what: str) -> None:
    ponr = plan.point_of_no_return
    if ponr is not None:
        s = wf.step(ponr)
        if s is not None and s.status == StepStatus.DONE:
            raise Conflict(f"step {ponr} is done: the workflow can no longer be {what}")


def _current(plan: Plan, wf: Workflow, step: str) -> tuple[Step, StepDef]:
    _ensure_active(wf)
    d = plan.step(step)
    if d is None:
        raise Invalid([{"field": "step", "reason": f"no step {step!r} in a {plan.kind} workflow"}])
    cur = wf.current
    if cur is None or cur.name != step:
        raise Conflict(f"the workflow waits on {cur.name if cur else 'nothing'}, not {step}")
    return cur, d


def _get(wf: Workflow, name: str) -> Step:
    s = wf.step(name)
    assert s is not None
    return s


def _release(wf: Workflow, s: Step, *, actor: str, reason: str, now: datetime) -> list[Change]:
    """Undo a done step's effect, if it holds one; the 'undone' change says what was released."""
    if s.status != StepStatus.DONE:
        return []
    held = [e for e in wf.effects if e.step == s.name and e.released_at is None]
    if not held:
        return []
    for e in held:
        e.released_at, e.release_reason = now, reason
    s.status = move(s.status, Action.UNDO)
    effect = ", ".join(EFFECT_UNDONE[e.kind] for e in held)
    return [Change("step", "undone", actor, now, step=s.name, owner=s.owner, reason=reason, effect=effect)]


def _advance(plan: Plan, wf: Workflow, changes: list[Change], now: datetime) -> Decision:
    """Activate the next pending step, skipping those that do not apply; complete at the end."""
    if wf.current is not None:
        return wf, changes
    for s, d in zip(wf.steps, plan.steps, strict=True):
        if s.status != StepStatus.PENDING:
            continue
        if d.when is not None and not wf.facts.get(d.when, False):
            s.status = move(s.status, Action.NOT_APPLICABLE)
            s.finished_at, s.actor, s.reason = now, "system", f"not applicable: {d.when} is not the case"
            changes.append(
                Change("step", "skipped", "system", now, step=s.name, owner=s.owner, reason=s.reason)
            )
            continue
        s.status = move(s.status, Action.ACTIVATE)
        s.attempts += 1
        s.activated_at, s.due_at = now, now + d.due
        if d.name == "completed":
            s.status = move(s.status, Action.COMPLETE)
            s.finished_at, s.actor, s.due_at = now, "system", None
            wf.status, wf.completed_at = WorkflowStatus.COMPLETED, now
            changes.append(Change("step", "done", "system", now, step=s.name, owner=s.owner))
            changes.append(Change("workflow", "completed", "system", now))
        else:
            changes.append(
                Change(
                    "step",
                    "active",
                    "system",
                    now,
                    step=s.name,
                    owner=s.owner,
                    due_at=s.due_at,
                    attempt=s.attempts,
                )
            )
        return wf, changes
    return wf, changes
