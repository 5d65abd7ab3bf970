"""The commands on a workflow, as plain Python: start, complete, skip, fail, retry, re-route, cancel.

Every command takes a plan and a workflow and returns the workflow after it plus the changes it
caused (`Change`), which the service turns into events, timeline entries and one document write.
Steps move only through the table of steps.py; what a step needs comes from its plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.repatriation.plans import EFFECT_UNDONE, Plan, StepDef
from services.repatriation.steps import (
    WAITING,
    Action,
    Change,
    Effect,
    Step,
    StepStatus,
    Transition,
    Workflow,
    WorkflowRequest,
    WorkflowStatus,
    move,
)
from shared.errors import Conflict


class Invalid(Exception):
    """The command's data is wrong, field by field (HTTP 422)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


def start(plan: Plan, request: WorkflowRequest, *, id: str, actor: str, now: datetime) -> Transition:
    """A new workflow: the first step (the request itself) done, the next one active."""
    reason = request.reason
    steps = [Step(name=d.name, owner=d.owner) for d in plan.steps]
    first = steps[0]
    first.status, first.activated_at, first.finished_at = StepStatus.DONE, now, now
    first.actor, first.reason, first.attempts = actor, reason, 1
    asked = request.model_dump() | {"country": request.country.upper()}
    wf = Workflow(**asked, id=id, kind=plan.kind, steps=steps, started_at=now)
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
) -> Transition:
    """The owner reports the step done, with its evidence and data; the next step becomes active."""
    current, definition = _current(plan, wf, step)
    if current.status != StepStatus.ACTIVE:
        raise Conflict(f"step {step} is {current.status}: only an active step can be completed")
    evidence, data = list(evidence or []), dict(data or {})
    errors = validate_completion(definition, wf.facts, evidence, data)
    if errors:
        raise Invalid(errors)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.COMPLETE)
    s.finished_at, s.actor, s.evidence, s.data, s.reason = now, actor, evidence, data, None
    if definition.undo:
        wf.effects.append(Effect(step=step, kind=definition.undo, detail=data, held_at=now))
    changes = [Change("step", "done", actor, now, step=step, owner=s.owner, evidence=tuple(evidence))]
    return _advance(plan, wf, changes, now)


def skip(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Transition:
    """A step that does not apply is skipped with a reason; the next step becomes active."""
    _, definition = _current(plan, wf, step)
    if not definition.skippable:
        raise Conflict(f"step {step} cannot be skipped")
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.SKIP)
    s.finished_at, s.actor, s.reason = now, actor, reason
    changes = [Change("step", "skipped", actor, now, step=step, owner=s.owner, reason=reason)]
    return _advance(plan, wf, changes, now)


def fail(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Transition:
    """The owner reports the step failed; the workflow waits for a retry, a skip, a re-route or a cancel."""
    _current(plan, wf, step)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.FAIL)
    s.actor, s.reason = actor, reason
    return wf, [Change("step", "failed", actor, now, step=step, owner=s.owner, reason=reason)]


def retry(plan: Plan, wf: Workflow, *, step: str, actor: str, reason: str, now: datetime) -> Transition:
    """A failed step is tried again, with a fresh deadline."""
    _, definition = _current(plan, wf, step)
    wf = wf.model_copy(deep=True)
    s = _get(wf, step)
    s.status = move(s.status, Action.RETRY)
    s.attempts += 1
    s.activated_at, s.due_at, s.actor, s.reason = now, now + definition.due, actor, reason
    return wf, [
        Change("step", "retried", actor, now, step=step, owner=s.owner, reason=reason, attempt=s.attempts),
        Change("step", "active", actor, now, step=step, owner=s.owner, due_at=s.due_at, attempt=s.attempts),
    ]


def reroute(plan: Plan, wf: Workflow, *, to_step: str, actor: str, reason: str, now: datetime) -> Transition:
    """Send the workflow back to an earlier step (e.g. a different flight), undoing what lies between."""
    _ensure_active(wf)
    target = plan.step(to_step)
    if target is None or not target.reroute_target:
        targets = [d.name for d in plan.steps if d.reroute_target]
        raise Invalid([{"field": "to_step", "reason": f"can re-route only to one of: {', '.join(targets)}"}])
    _ensure_before_point_of_no_return(plan, wf, "re-routed")
    current = wf.current
    if current is None or plan.index(current.name) < plan.index(to_step):
        raise Conflict(f"step {to_step} lies ahead of the workflow: nothing to re-route")
    wf = wf.model_copy(deep=True)
    changes = [Change("workflow", "rerouted", actor, now, reason=reason, to_step=to_step)]
    lo, hi = plan.index(to_step), plan.index(current.name)
    for i in range(hi, lo - 1, -1):  # latest first, as one would unwind them by hand
        s = wf.steps[i]
        changes += _release(wf, s, actor=actor, reason=f"re-routed to {to_step}: {reason}", now=now)
        if s.status in WAITING:
            why = f"re-routed: {reason}"
            changes.append(Change("step", "undone", actor, now, step=s.name, owner=s.owner, reason=why))
        if s.status != StepStatus.PENDING:
            s.status = move(s.status, Action.RESET)
        s.finished_at, s.due_at = None, None
    return _advance(plan, wf, changes, now)


def cancel(plan: Plan, wf: Workflow, *, actor: str, reason: str, now: datetime) -> Transition:
    """Stop the workflow for a reason, undoing every effect its steps hold, visibly."""
    _ensure_active(wf)
    _ensure_before_point_of_no_return(plan, wf, "cancelled")
    wf = wf.model_copy(deep=True)
    changes: list[Change] = []
    for s in reversed(wf.steps):
        changes += _release(wf, s, actor=actor, reason=f"cancelled: {reason}", now=now)
        if s.status in (StepStatus.PENDING, *WAITING):
            s.status = move(s.status, Action.CANCEL)
            s.due_at = None
    wf.status, wf.cancelled_at, wf.cancel_reason = WorkflowStatus.CANCELLED, now, reason
    changes.append(Change("workflow", "cancelled", actor, now, reason=reason))
    return wf, changes


def set_home_province(
    plan: Plan, wf: Workflow, *, province: str, actor: str, reason: str, now: datetime
) -> Transition:
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


def learn_home(
    plan: Plan,
    wf: Workflow,
    *,
    province: str | None,
    worker_id: str | None,
    regency: str | None = None,
    name: str | None = None,
    actor: str,
    source: str,
    now: datetime,
) -> Transition:
    """The worker's home, learnt after the start (the departure or the case's match came later).

    Only fills what the workflow does not know: a province the desk set stands, and a workflow
    of another worker is left alone. Until its home is known no region may act on the workflow."""
    if wf.status != WorkflowStatus.ACTIVE or wf.kind == "evacuation" or wf.home_province or not province:
        return wf, []
    if wf.worker_id and worker_id and wf.worker_id != worker_id:
        return wf, []
    wf = wf.model_copy(deep=True)
    wf.home_province = province
    wf.worker_id = wf.worker_id or worker_id
    wf.home_regency = wf.home_regency or regency
    wf.worker_name = wf.worker_name or name
    why = f"unknown -> {province}: learnt from {source}"
    return wf, [Change("workflow", "home_province_set", actor, now, reason=why)]


def all_accounted_for(plan: Plan, wf: Workflow, *, now: datetime, reason: str) -> Transition:
    """Every worker of an evacuation is accounted for: the steps left are done with, and it completes."""
    if wf.status != WorkflowStatus.ACTIVE:
        return wf, []
    wf = wf.model_copy(deep=True)
    changes: list[Change] = []
    for s in wf.steps:
        if s.name == plan.final.name or s.status not in (StepStatus.PENDING, *WAITING):
            continue
        s.status = move(s.status, Action.NOT_APPLICABLE if s.status == StepStatus.PENDING else Action.SKIP)
        s.finished_at, s.actor, s.reason, s.due_at = now, "system", reason, None
        changes.append(Change("step", "skipped", "system", now, step=s.name, owner=s.owner, reason=reason))
    return _advance(plan, wf, changes, now)


def on_event(
    plan: Plan, wf: Workflow, *, event: str, actor: str, now: datetime, evidence: list[str]
) -> Transition:
    """An event completes the active step waiting for it (the plan's `on_event`); else nothing changes."""
    current = wf.current
    if wf.status != WorkflowStatus.ACTIVE or current is None or current.status != StepStatus.ACTIVE:
        return wf, []
    definition = plan.step(current.name)
    if definition is None or definition.on_event != event:
        return wf, []
    wf = wf.model_copy(deep=True)
    s = _get(wf, current.name)
    s.status = move(s.status, Action.COMPLETE)
    s.finished_at, s.actor, s.evidence = now, actor, list(evidence)
    changes = [Change("step", "done", actor, now, step=s.name, owner=s.owner, evidence=tuple(evidence))]
    return _advance(plan, wf, changes, now)


# ---------------------------------------------------------------- rules


def validate_completion(
    definition: StepDef, facts: dict[str, bool], evidence: list[str], data: dict[str, Any]
) -> list[dict[str, str]]:
    """What is missing or wrong in a step's completion, field by field (the step's `evidence`,
    `requires` and `refuse` in its plan)."""
    errors: list[dict[str, str]] = []
    if definition.evidence and not [e for e in evidence if e.strip()]:
        errors.append({"field": "evidence", "reason": "cite at least one document reference"})
    for name, kind in definition.requires.items():
        value = data.get(name)
        field = f"data.{name}"
        if value is None or value == "":
            errors.append({"field": field, "reason": "required"})
        elif isinstance(kind, list) and value not in kind:
            errors.append({"field": field, "reason": f"must be one of: {', '.join(map(str, kind))}"})
        elif kind == "bool" and not isinstance(value, bool):
            errors.append({"field": field, "reason": "must be true or false"})
        elif kind in ("text", "time") and not isinstance(value, str):
            errors.append({"field": field, "reason": "must be a string"})
        elif kind == "time" and not _is_aware_iso(value):
            errors.append({"field": field, "reason": "must be an ISO 8601 time with its offset"})
    # The domain's own rules, beyond the shapes above: completions the request's facts rule out.
    for refusal in definition.refuse:
        error = refusal.check(facts, data)
        if error is not None:
            errors.append(error)
    return errors


def _is_aware_iso(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


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
    definition = plan.step(step)
    if definition is None:
        raise Invalid([{"field": "step", "reason": f"no step {step!r} in a {plan.kind} workflow"}])
    current = wf.current
    if current is None or current.name != step:
        raise Conflict(f"the workflow waits on {current.name if current else 'nothing'}, not {step}")
    return current, definition


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


def _advance(plan: Plan, wf: Workflow, changes: list[Change], now: datetime) -> Transition:
    """Activate the next pending step, skipping those that do not apply; complete at the last one."""
    if wf.current is not None:
        return wf, changes
    for s, definition in zip(wf.steps, plan.steps, strict=True):
        if s.status != StepStatus.PENDING:
            continue
        if definition.when is not None and not wf.facts.get(definition.when, False):
            s.status = move(s.status, Action.NOT_APPLICABLE)
            why = f"not applicable: {definition.when} is not the case"
            s.finished_at, s.actor, s.reason = now, "system", why
            changes.append(
                Change("step", "skipped", "system", now, step=s.name, owner=s.owner, reason=s.reason)
            )
            continue
        s.status = move(s.status, Action.ACTIVATE)
        s.attempts += 1
        s.activated_at, s.due_at = now, now + definition.due
        if definition.name == plan.final.name:
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
