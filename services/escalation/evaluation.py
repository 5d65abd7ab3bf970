"""What a rule set makes of one event (pure): immediate firings, chains to start, counters to bump.

The live engine (engine.py) and the dry run (simulate.py) both call `evaluate`, so a dry run
cannot drift from what the service does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.escalation.actions import ACTION_NS, Firing, build_firing
from services.escalation.chains import ChainStart, frozen_stages, frozen_until
from services.escalation.counting import CountHit, bucket_of
from services.escalation.ruleset import SUBJECT_FIELDS, Incoming, Rule, RuleSet, field_value


def subject_key(kind: str, data: dict[str, Any]) -> str | None:
    """'case:<id>' or 'repatriation_step:<id>/<step>'; None when the payload lacks a field."""
    parts = []
    for name in SUBJECT_FIELDS[kind]:
        present, value = field_value(data, name)
        if not present:
            return None
        parts.append(str(value))
    return f"{kind}:{'/'.join(parts)}"


def subject_keys(data: dict[str, Any]) -> list[str]:
    """Every subject an event is about (what chains it might end)."""
    return [k for kind in SUBJECT_FIELDS if (k := subject_key(kind, data))]


FACT_FIELDS = (
    "case_id",
    "incident_id",
    "agency_id",
    "employer_name",
    "country",
    "category",
    "severity",
    "worker_id",
    "worker_key",
    "repatriation_id",
    "step",
)


def facts_of(data: dict[str, Any]) -> dict[str, Any]:
    """The payload fields actions need, kept with a chain so it can act long after its trigger."""
    out = {f: data[f] for f in FACT_FIELDS if data.get(f) is not None}
    match = data.get("match")
    if isinstance(match, dict) and match.get("worker_id") and "worker_id" not in out:
        out["worker_id"] = match["worker_id"]
    return out


@dataclass
class Effects:
    """What the rules make of one event: immediate firings, chains to start, counters to bump."""

    firings: list[Firing] = field(default_factory=list)
    starts: list[ChainStart] = field(default_factory=list)
    counts: list[CountHit] = field(default_factory=list)


def in_force(loaded: list[tuple[int, datetime]], at: datetime) -> int:
    """The rule set version in force at a time: the last one loaded at or before it (the first
    one for anything older, since events are evaluated by whatever is in force when they come)."""
    ordered = sorted(loaded)
    if not ordered:
        raise ValueError("no rule set is stored")
    version = ordered[0][0]
    for candidate, loaded_at in ordered:
        if loaded_at <= at:
            version = candidate
    return version


def evaluate(rules: RuleSet, version: int, ev: Incoming) -> Effects:
    """What the given rule set makes of an event (pure)."""
    out = Effects()
    for rule in rules.rules:
        if not rule.enabled or not rule.triggered_by(ev):
            continue
        if rule.deadline is not None:
            start = _chain_start(rule, version, ev)
            if start is not None:
                out.starts.append(start)
        elif rule.count is not None:
            hit = _count_hit(rule, version, ev)
            if hit is not None:
                out.counts.append(hit)
        else:
            out.firings.append(_immediate(rule, version, ev))
    return out


def _actions(rule: Rule) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", exclude_none=True) for a in rule.actions or []]


def _chain_start(rule: Rule, version: int, ev: Incoming) -> ChainStart | None:
    """The chain a deadline rule starts; None when the event names no subject or start time."""
    assert rule.deadline is not None
    subject = subject_key(rule.deadline.subject, ev.data)
    if subject is None:
        return None
    started = ev.time
    if rule.deadline.start:
        present, value = field_value(ev.data, rule.deadline.start)
        if not present:
            return None
        started = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    return ChainStart(
        id=uuid.uuid5(ACTION_NS, f"chain|{rule.id}|{subject}|{ev.id}").hex,
        rule_id=rule.id,
        rule_version=version,
        description=rule.description,
        subject=subject,
        trigger=ev.id,
        started_at=started,
        stages=frozen_stages(rule.deadline),
        until=frozen_until(rule.deadline),
        facts=facts_of(ev.data),
        trigger_at=ev.time,
    )


def _count_hit(rule: Rule, version: int, ev: Incoming) -> CountHit | None:
    """The member a counting rule counts; None when the event lacks a field of the key."""
    assert rule.count is not None
    parts = [field_value(ev.data, f) for f in rule.count.by]
    if not all(present for present, _ in parts):
        return None
    return CountHit(
        rule_id=rule.id,
        rule_version=version,
        key="/".join(str(value) for _, value in parts),
        bucket=bucket_of(ev.time, rule.count.within),
        within=rule.count.within,
        member=str(ev.data.get("incident_id") or ev.id),
        at=ev.time,
        at_least=rule.count.at_least,
        actions=_actions(rule),
        description=rule.description,
        facts=facts_of(ev.data),
    )


def _immediate(rule: Rule, version: int, ev: Incoming) -> Firing:
    """The firing of a rule with immediate actions: once per event, or once per case."""
    subject = subject_key("case", ev.data)
    trigger = subject if rule.once_per == "subject" and subject else ev.id
    return build_firing(
        rule_id=rule.id,
        rule_version=version,
        stage="now",
        trigger=trigger,
        subject=subject,
        actions=_actions(rule),
        facts=facts_of(ev.data),
        description=rule.description,
        at=ev.time,
    )
