"""Events owned by escalation: what a rule decided. Commands to other services ride their topics."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime

from shared.envelope import Event, event_type
from shared.topics import ESCALATIONS, REGISTRY_COMMANDS


class ActionKind(StrEnum):
    ESCALATE = "escalate"  # raise a case's escalation level
    NOTIFY = "notify"  # a role or a named on-duty contact; delivered by other systems
    TAG = "tag"
    REFER = "refer"  # to a partner, e.g. the anti-trafficking task force
    OPEN_CASE = "open_case"  # e.g. an agency investigation


@event_type("lindungi.escalation.action.v1", ESCALATIONS)
class EscalationAction(Event):
    """One action a rule fired. casework applies case actions to the case and its timeline."""

    action_id: str  # unique per (rule, stage, trigger): consumers apply it once
    rule_id: str
    rule_version: int
    kind: ActionKind
    case_id: str | None = None
    level: int | None = None  # for escalate: 0..3
    notify: str | None = None  # role or contact, for notify
    tag: str | None = None
    partner: str | None = None
    subject_kind: Literal["case", "agency", "employer", "country"] = "case"
    subject_id: str | None = None
    reason: str
    fired_at: AwareDatetime


@event_type("lindungi.registry.flag.requested.v1", REGISTRY_COMMANDS, sent_by=("escalation",))
class FlagRequested(Event):
    """Ask registry to flag an agency or an employer."""

    action_id: str
    subject_kind: Literal["agency", "employer"]
    subject_id: str
    rule_id: str
    reason: str
    requested_at: AwareDatetime
