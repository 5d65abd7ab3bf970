"""Desk commands on one case: the lifecycle actions (a table of one step per action), triage,
notes, tags, priority and escalation. Each returns the CaseUpdate that `changes.change` writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.casework import domain, queues
from services.casework.changes import (
    CaseUpdate,
    Forbidden,
    case_change,
    entry,
    push_timeline,
    transition_update,
)
from services.casework.domain import Action
from shared.errors import Conflict
from shared.events.casework import (
    CaseAcknowledged,
    CaseAwaitingRepatriation,
    CaseChange,
    CaseClaimed,
    CaseClosed,
    CaseEscalated,
    CasePriorityChanged,
    CaseReleased,
    CaseReopened,
    CaseResolved,
    CaseStatus,
    CaseTriaged,
)
from shared.mongo import Doc, merge_updates
from shared.vocab import Category


@dataclass(frozen=True)
class DeskCommand:
    """One desk user's lifecycle action on a case as read, with what the request carried."""

    doc: Doc
    action: Action
    actor: str
    roles: frozenset[str]
    now: datetime
    reason: str | None = None
    resolution: str | None = None
    assignee: str | None = None
    category: Category | None = None
    lease: timedelta | None = None  # the claim lease (queues.claim_lease); None: queues.yaml's

    @property
    def claim_lease(self) -> timedelta:
        return self.lease if self.lease is not None else queues.load_queues().claim_lease

    @property
    def supervisor(self) -> bool:
        return "supervisor" in self.roles

    def transition(self, event_cls: type[CaseChange], kind: str, **kw: Any) -> CaseUpdate:
        """The lifecycle transition of this command (transition_update with its actor, time, reason)."""
        return transition_update(
            self.doc,
            self.action,
            actor=self.actor,
            now=self.now,
            reason=self.reason,
            event_cls=event_cls,
            kind=kind,
            **kw,
        )


def _holder_or_supervisor(cmd: DeskCommand) -> None:
    if not cmd.supervisor and cmd.doc.get("assignee") != cmd.actor:
        raise Forbidden("only the officer working the case, or a supervisor, does this")


def _triage(cmd: DeskCommand) -> CaseUpdate:
    return triage_update(cmd.doc, actor=cmd.actor, now=cmd.now, reason=cmd.reason, category=cmd.category)


def _claim(cmd: DeskCommand) -> CaseUpdate:
    lease = cmd.now + cmd.claim_lease
    return cmd.transition(
        CaseClaimed,
        "claimed",
        set_={"assignee": cmd.actor, "lease_until": lease},
        event_kw={"assignee": cmd.actor},
    )


def _acknowledge(cmd: DeskCommand) -> CaseUpdate:
    doc = cmd.doc
    if doc.get("assignee") != cmd.actor:
        raise Forbidden("only the officer holding the claim acknowledges it")
    lease = doc.get("lease_until")
    if lease is not None and lease < cmd.now and doc["status"] == CaseStatus.ASSIGNED:
        raise Conflict("the claim's lease has expired; claim the case again", status=doc["status"])
    return cmd.transition(
        CaseAcknowledged,
        "acknowledged",
        unset={"lease_until": ""},
        filter_={"assignee": cmd.actor},
        # the severity lets escalation start the resolve deadline of that severity
        event_kw={"assignee": cmd.actor, "severity": doc.get("severity")},
    )


def _release(cmd: DeskCommand) -> CaseUpdate:
    if cmd.doc.get("assignee") != cmd.actor and not cmd.supervisor:
        raise Forbidden("only the officer holding the claim, or a supervisor, releases it")
    return cmd.transition(
        CaseReleased,
        "released",
        set_={"assignee": None},
        unset={"lease_until": ""},
        event_kw={"assignee": cmd.doc.get("assignee")},
    )


def _reassign(cmd: DeskCommand) -> CaseUpdate:
    doc, previous = cmd.doc, cmd.doc.get("assignee")
    case_update = cmd.transition(
        CaseClaimed,
        "reassigned",
        set_={"assignee": cmd.assignee, "lease_until": cmd.now + cmd.claim_lease},
        filter_={"assignee": previous},
        event_kw={"assignee": cmd.assignee},
        timeline_extra={"assignee": cmd.assignee, "previous_assignee": previous},
    )
    if previous:  # the previous officer hears they no longer hold it
        released = case_change(
            CaseReleased,
            doc,
            status=CaseStatus.ASSIGNED,
            actor=cmd.actor,
            at=cmd.now,
            reason=cmd.reason,
            assignee=previous,
        )
        case_update.events.insert(0, released)
    return case_update


def _await_repatriation(cmd: DeskCommand) -> CaseUpdate:
    _holder_or_supervisor(cmd)
    return cmd.transition(CaseAwaitingRepatriation, "awaiting_repatriation")


def _resolve(cmd: DeskCommand) -> CaseUpdate:
    _holder_or_supervisor(cmd)
    return cmd.transition(
        CaseResolved,
        "resolved",
        set_={"resolution": cmd.resolution, "open_key": domain.closed_key(cmd.doc["_id"])},
        timeline_extra={"resolution": cmd.resolution},
    )


def _close(cmd: DeskCommand) -> CaseUpdate:
    return cmd.transition(CaseClosed, "closed", set_={"open_key": domain.closed_key(cmd.doc["_id"])})


def _reopen(cmd: DeskCommand) -> CaseUpdate:
    doc = cmd.doc
    if doc.get("merged_into"):
        raise Conflict(f"merged into {doc['merged_into']}: undo the merge instead", status=doc["status"])
    key = doc.get("join_key") or doc["open_key"]
    return cmd.transition(
        CaseReopened,
        "reopened",
        set_={"open_key": key, "assignee": None, "resolution": None, "reopened_at": cmd.now},
        unset={"lease_until": ""},
    )


# One step per lifecycle action: its own checks of who may (after the role and state checks
# every action shares), then its transition.
DESK_STEPS: dict[Action, Callable[[DeskCommand], CaseUpdate]] = {
    Action.TRIAGE: _triage,
    Action.CLAIM: _claim,
    Action.ACKNOWLEDGE: _acknowledge,
    Action.RELEASE: _release,
    Action.REASSIGN: _reassign,
    Action.AWAIT_REPATRIATION: _await_repatriation,
    Action.RESOLVE: _resolve,
    Action.CLOSE: _close,
    Action.REOPEN: _reopen,
}


def desk_update(
    doc: Doc,
    action: Action,
    *,
    actor: str,
    roles: frozenset[str],
    now: datetime,
    reason: str | None = None,
    resolution: str | None = None,
    assignee: str | None = None,
    category: Category | None = None,
    lease: timedelta | None = None,
) -> CaseUpdate:
    """The update of a desk user's lifecycle action: the role (403), then the state (409), then
    the action's own step in DESK_STEPS."""
    if not domain.allowed(action, roles):
        raise Forbidden(
            f"{action.value} requires one of the roles: {', '.join(sorted(domain.ROLES[action]))}"
        )
    if domain.transition(doc["status"], action) is None:  # the state first: 409 before who may
        raise Conflict(f"cannot {action.value} a case that is {doc['status']}", status=doc["status"])
    step = DESK_STEPS.get(action)
    if step is None:
        raise Conflict(f"{action.value} is not a desk action", status=doc["status"])
    cmd = DeskCommand(
        doc, action, actor, frozenset(roles), now, reason, resolution, assignee, category, lease
    )
    return step(cmd)


def triage_update(
    doc: Doc, *, actor: str, now: datetime, reason: str | None, category: Category | None
) -> CaseUpdate:
    """Triage, into another category when the desk finds one (a death confirmed here reaches the
    registry as a death report does): the case takes the category's family, queue and priority,
    and an open case of one worker moves to that family's key (409 when the worker has one)."""
    desk_queues = queues.load_queues()
    previous = Category(doc["category"]) if doc.get("category") else None
    set_: Doc = {}
    if category is not None and previous is not None and category != previous:
        set_ = {
            "category": category.value,
            "family": domain.family_of(category).value,
            "queue": desk_queues.queue_for(country=doc["country"], category=category),
            "priority": max(
                int(doc.get("priority") or 0),
                domain.priority(
                    severity=doc["severity"],
                    category=category,
                    non_procedural=bool(doc.get("non_procedural")),
                    people_affected=int(doc.get("people_affected") or 1),
                ),
            ),
        }
        join = doc.get("join_key")
        if join and doc.get("open_key") == join and "|" in join and not doc.get("group"):
            key = domain.open_key(join.rsplit("|", 1)[0], category)
            set_.update(open_key=key, join_key=key)
    changed = bool(set_)
    return transition_update(
        doc,
        Action.TRIAGE,
        actor=actor,
        now=now,
        reason=reason,
        event_cls=CaseTriaged,
        kind="triaged",
        set_=set_,
        event_kw={
            "category": Category(set_["category"]) if changed else previous,
            "previous_category": previous if changed else None,
            "worker_id": doc.get("worker_id"),
            "group": bool(doc.get("group")),
        },
        timeline_extra=(
            {"category": set_["category"], "previous_category": doc["category"]} if changed else None
        ),
    )


def note_update(doc: Doc, *, actor: str, now: datetime, text: str) -> CaseUpdate:
    """An internal note on the timeline (never shown to missions)."""
    return CaseUpdate(
        merge_updates(
            {"$set": {"updated_at": now}},
            push_timeline(entry(at=now, kind="note", by=actor, reason=text, internal=True)),
        )
    )


def priority_update(doc: Doc, *, actor: str, now: datetime, priority: int, reason: str) -> CaseUpdate:
    """A supervisor's change of priority, with the reason."""
    if not domain.is_open(doc["status"]):
        raise Conflict("the priority of a finished case does not change", status=doc["status"])
    ev = case_change(CasePriorityChanged, doc, actor=actor, at=now, reason=reason, priority=priority)
    tl = entry(
        at=now,
        kind="priority_changed",
        by=actor,
        reason=reason,
        priority=priority,
        previous_priority=doc.get("priority"),
    )
    return CaseUpdate(
        merge_updates({"$set": {"priority": priority, "updated_at": now}}, push_timeline(tl)), [ev]
    )


def escalate_update(
    doc: Doc, *, actor: str, now: datetime, level: int | None, reason: str
) -> CaseUpdate | None:
    """Raise the escalation level (never lower it); None when already at or above."""
    current = int(doc.get("escalation_level") or 0)
    new = domain.escalation_level(current, level)
    if new == current:
        return None
    ev = case_change(CaseEscalated, doc, actor=actor, at=now, reason=reason, level=new)
    tl = entry(at=now, kind="escalated", by=actor, reason=reason, level=new, previous_level=current)
    return CaseUpdate(
        merge_updates(
            {"$set": {"escalation_level": new, "escalated_at": now, "updated_at": now}}, push_timeline(tl)
        ),
        [ev],
        # the stored value as read (None matches a case written before levels existed)
        {"escalation_level": doc.get("escalation_level")},
    )


def supervisor_escalate_update(
    doc: Doc, *, actor: str, now: datetime, level: int | None, reason: str
) -> CaseUpdate:
    """A supervisor's escalation: Conflict when the case is finished or already at that level."""
    if not domain.is_open(doc["status"]):
        raise Conflict("a finished case is not escalated", status=doc["status"])
    case_update = escalate_update(doc, actor=actor, now=now, level=level, reason=reason)
    if case_update is None:
        raise Conflict(f"already at escalation level {doc.get('escalation_level', 0)}", status=doc["status"])
    return case_update


def tag_update(doc: Doc, *, actor: str, now: datetime, tag: str, reason: str | None) -> CaseUpdate:
    """Add a tag (once), with a timeline entry."""
    return CaseUpdate(
        merge_updates(
            {"$set": {"updated_at": now}, "$addToSet": {"tags": tag}},
            push_timeline(entry(at=now, kind="tagged", by=actor, reason=reason, tag=tag)),
        )
    )
