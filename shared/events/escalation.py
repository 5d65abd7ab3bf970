"""Events owned by escalation: what a rule decided. Commands to other services ride their topics."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime

from shared.envelope import Event, event_type
from shared.topics import ESCALATIONS, REGISTRY_COMMANDS
from shared.vocab import Category, Severity


class ActionKind(StrEnum):
    ESCALATE = "escalate"  # raise a case's escalation level
    NOTIFY = "notify"  # a role or a named on-duty contact; delivered by escalation's notifier
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
    level: int | None = None  # escalate: 0..3; notify and refer: the level their stage escalates to, if any
    notify: str | None = None  # role or contact, for notify
    tag: str | None = None
    partner: str | None = None
    subject_kind: Literal["case", "agency", "employer", "country"] = "case"
    subject_id: str | None = None
    reason: str
    fired_at: AwareDatetime
    # What the trigger said about the case, so a notification can be routed (by region) and
    # say the minimum its receiver needs without reading casework. Never personal data.
    country: str | None = None
    category: Category | None = None
    severity: Severity | None = None
    # open_case by a counting rule: the incidents it counted (what the investigation is about).
    incident_ids: list[str] = []


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # after the configured number of tries, or refused for good, or no channel
    WITHDRAWN = "withdrawn"  # not sent: the deadline that fired it turned out to have been met


@event_type("lindungi.escalation.notification.v1", ESCALATIONS)
class NotificationDelivery(Event):
    """What became of one notification of a notify or refer action: sent, or failed after N tries."""

    notification_id: str  # one per action and contact: a receiver drops repeats by it
    action_id: str
    rule_id: str
    kind: ActionKind  # notify or refer
    case_id: str
    to: str  # the role (notify) or partner (refer) the action named
    contact: str | None = None  # the channel file's contact; None when no route named one
    channel: Literal["email", "webhook"] | None = None
    status: DeliveryStatus
    attempts: int
    error: str | None = None  # the last failure, for failed
    at: AwareDatetime


@event_type("lindungi.escalation.withdrawn.v1", ESCALATIONS)
class EscalationWithdrawn(Event):
    """A deadline was met after all (its ending event came late): what escalation undid, and what stands."""

    case_id: str
    chain_id: str
    rule_id: str
    stages: list[str]  # the stages that fired after the deadline was in fact met
    met_at: AwareDatetime  # when the ending event happened
    ended_by: str  # its event id
    undone: list[str]
    not_undone: list[str]
    at: AwareDatetime


@event_type("lindungi.registry.flag.requested.v1", REGISTRY_COMMANDS, sent_by=("escalation",))
class FlagRequested(Event):
    """Ask registry to flag an agency or an employer."""

    action_id: str
    subject_kind: Literal["agency", "employer"]
    subject_id: str
    rule_id: str
    reason: str
    requested_at: AwareDatetime
