"""A rule's actions turned into the events they emit, with deterministic ids; what can be undone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.envelope import Event
from shared.events.escalation import ActionKind, EscalationAction, FlagRequested
from shared.events.repatriation import RepatriationKind, RepatriationRequested

ACTION_NS = uuid.UUID("2b0f4a43-7d0e-4f7a-b4a3-5f0e9e3c8a11")


def action_id(rule_id: str, stage: str, trigger: str, index: int) -> str:
    """Deterministic: the same rule, stage and trigger always give the same action ids."""
    return uuid.uuid5(ACTION_NS, f"{rule_id}|{stage}|{trigger}|{index}").hex


@dataclass
class Emission:
    """An event to publish: the payload, its Kafka key, its envelope id."""

    event: Event
    key: str
    id: str


@dataclass
class Firing:
    """What one rule did once: its actions as events, and what it skipped and why."""

    rule_id: str
    stage: str  # "now", "s0r0"..., or "window:<start>"
    trigger: str  # the triggering event id (or counter id)
    subject: str | None
    at: datetime
    emissions: list[Emission] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A comparable description (no ids that differ between rule versions)."""
        return {
            "rule_id": self.rule_id,
            "stage": self.stage,
            "subject": self.subject,
            "at": self.at.isoformat(),
            "actions": [_describe(e.event) for e in self.emissions],
        }


def _describe(ev: Event) -> str:
    if isinstance(ev, EscalationAction):
        extra = ev.level if ev.kind == ActionKind.ESCALATE else (ev.notify or ev.tag or ev.partner or "")
        return f"{ev.kind.value}:{extra}" if extra != "" else ev.kind.value
    if isinstance(ev, FlagRequested):
        return f"flag:{ev.subject_kind}"
    if isinstance(ev, RepatriationRequested):
        return f"repatriate:{ev.kind.value}"
    return type(ev).__name__


def build_firing(
    *,
    rule_id: str,
    rule_version: int,
    stage: str,
    trigger: str,
    subject: str | None,
    actions: list[dict[str, Any]],
    facts: dict[str, Any],
    description: str,
    at: datetime,
    members: list[str] | None = None,
) -> Firing:
    """Turn a rule's actions (JSON form) into the events they emit, with deterministic ids.

    `members`: what a counting rule counted (incident ids); an investigation it opens names them.
    """
    firing = Firing(rule_id=rule_id, stage=stage, trigger=trigger, subject=subject, at=at)
    context = _Context(
        rule_id=rule_id,
        rule_version=rule_version,
        stage=stage,
        trigger=trigger,
        facts=facts,
        description=description,
        at=at,
        members=list(members or []),
        # A notification is routed by the level its stage escalates to (e.g. the director at 2).
        stage_level=max((int(a["level"]) for a in actions if a["do"] == "escalate"), default=None),
    )
    for index, action in enumerate(actions):
        out = _emission(context, index, action)
        if isinstance(out, Emission):
            firing.emissions.append(out)
        elif out is not None:
            firing.skipped.append(out)
    return firing


@dataclass(frozen=True)
class _Context:
    """What every action of one firing shares."""

    rule_id: str
    rule_version: int
    stage: str
    trigger: str
    facts: dict[str, Any]
    description: str
    at: datetime
    members: list[str]
    stage_level: int | None

    @property
    def about(self) -> dict[str, Any]:
        return {k: self.facts.get(k) for k in ("country", "category", "severity")}


def _emission(context: _Context, index: int, action: dict[str, Any]) -> Emission | str | None:
    """The event of a firing's `index`-th action, or why it is skipped (a string)."""
    aid = action_id(context.rule_id, context.stage, context.trigger, index)
    reason = action.get("reason") or context.description or context.rule_id
    do = action["do"]
    if do in ("escalate", "notify", "tag", "refer"):
        return _case_action(context, aid, reason, action)
    if do in ("flag", "open_case"):
        return _subject_action(context, aid, reason, action)
    if do == "repatriate":
        return _repatriation(context, aid, reason, action)
    return None


def _case_action(context: _Context, aid: str, reason: str, action: dict[str, Any]) -> Emission | str:
    """escalate, notify, tag, refer: an action on the triggering case."""
    do = action["do"]
    case_id = context.facts.get("case_id")
    if not case_id:
        return f"{do}: the trigger names no case"
    level = (
        action.get("level")
        if do == "escalate"
        else context.stage_level
        if do in ("notify", "refer")
        else None
    )
    ev = EscalationAction(
        action_id=aid,
        rule_id=context.rule_id,
        rule_version=context.rule_version,
        reason=reason,
        kind=ActionKind(do),
        case_id=case_id,
        level=level,
        notify=action.get("to"),
        tag=action.get("tag"),
        partner=action.get("partner"),
        subject_kind="case",
        subject_id=case_id,
        fired_at=context.at,
        **context.about,
    )
    return Emission(ev, case_id, aid)


def _subject_action(context: _Context, aid: str, reason: str, action: dict[str, Any]) -> Emission | str:
    """flag, open_case: an action on an agency, an employer or a country the trigger names."""
    do, kind, facts = action["do"], action["subject"], context.facts
    subject_id = {"agency": facts.get("agency_id"), "employer": facts.get("employer_name")}.get(
        kind, facts.get("country")
    )
    if not subject_id:
        return f"{do}: the trigger names no {kind}"
    ev: Event
    if do == "flag":
        ev = FlagRequested(
            action_id=aid,
            subject_kind=kind,
            subject_id=subject_id,
            rule_id=context.rule_id,
            reason=reason,
            requested_at=context.at,
        )
    else:
        # `members`: what a counting rule counted (incident ids); the investigation names them.
        ev = EscalationAction(
            action_id=aid,
            rule_id=context.rule_id,
            rule_version=context.rule_version,
            reason=reason,
            kind=ActionKind.OPEN_CASE,
            case_id=facts.get("case_id"),
            subject_kind=kind,
            subject_id=subject_id,
            fired_at=context.at,
            incident_ids=context.members,
            **context.about,
        )
    return Emission(ev, subject_id, aid)


def _repatriation(context: _Context, aid: str, reason: str, action: dict[str, Any]) -> Emission | str:
    """repatriate: a command to repatriation for the country the trigger names."""
    facts = context.facts
    if not facts.get("country"):
        return "repatriate: the trigger names no country"
    case_id = facts.get("case_id")
    ev = RepatriationRequested(
        request_id=aid,
        kind=RepatriationKind(action["kind"]),
        case_id=case_id,
        worker_id=facts.get("worker_id"),
        worker_key=facts.get("worker_key"),
        country=facts["country"],
        requested_by="rule",
        reason=reason,
        requested_at=context.at,
    )
    return Emission(ev, case_id or facts["country"], aid)


def now_decision_id(firing: Firing) -> str:
    """The decision of an immediate firing: its rule and trigger (a redelivery decides nothing new)."""
    return f"{firing.rule_id}:now:{firing.trigger}"


def slot_decision_id(chain_id: str, slot_label: str) -> str:
    """The decision of one chain slot, fired or cancelled: one per chain and slot."""
    return f"{chain_id}:{slot_label}"


def undo_plan(actions: list[str]) -> tuple[list[str], list[str], list[int]]:
    """What can be undone of fired actions (their summaries, e.g. 'notify:supervisor').

    (undone, not undone, indexes of the notify/refer actions whose delivery is withdrawn).
    """
    undone: list[str] = []
    stands: list[str] = []
    withdraw: list[int] = []
    for index, summary in enumerate(actions):
        kind = summary.partition(":")[0]
        match kind:
            case "notify" | "refer":
                withdraw.append(index)
                undone.append(f"{summary}: withdrawn unless already sent (its outcome follows)")
            case "escalate":
                stands.append(f"{summary}: the level stands; levels are never lowered automatically")
            case "tag":
                stands.append(f"{summary}: the tag stands")
            case "repatriate":
                stands.append(f"{summary}: the repatriation request stands; cancel it there if not needed")
            case "flag":
                stands.append(f"{summary}: the flag stands")
            case _:
                stands.append(f"{summary}: stands")
    return undone, stands, withdraw
