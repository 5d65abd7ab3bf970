"""Escalation rules as data, and their evaluation: plain Python, no I/O.

A rule file (YAML) is parsed and validated here; the live engine (engine.py) and the dry run
(simulate.py) both evaluate events through the same functions, so a dry run cannot drift from
what the service does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

import shared.events  # noqa: F401  (registers every event type)
from shared import durations
from shared.envelope import EVENT_TYPES, Event
from shared.events.escalation import ActionKind, EscalationAction, FlagRequested
from shared.events.repatriation import RepatriationKind, RepatriationRequested
from shared.topics import CASES, DEPARTURES, INCIDENTS, REPATRIATIONS

ACTION_NS = uuid.UUID("2b0f4a43-7d0e-4f7a-b4a3-5f0e9e3c8a11")
CONSUMED = (CASES, INCIDENTS, DEPARTURES, REPATRIATIONS)

# Short names a rule file uses ("CaseOpened") for the event types escalation consumes.
EVENTS: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_TYPES.values() if cls.topic in CONSUMED}
SHORT_NAME: dict[str, str] = {cls.type: name for name, cls in EVENTS.items()}

# What a deadline chain follows: the payload fields that name one subject.
SUBJECTS: dict[str, tuple[str, ...]] = {
    "case": ("case_id",),
    "repatriation": ("repatriation_id",),
    "repatriation_step": ("repatriation_id", "step"),
    "worker": ("worker_id",),
}


def parse_duration(value: Any) -> int:
    """Seconds of '90s', '30m', '4h', '30d' (or a plain number of seconds): shared.durations."""
    return int(durations.parse_duration(value).total_seconds())


Duration = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- conditions


class Condition(_Strict):
    """A test on one payload field. In YAML: a value (equals), a list (one of), or operators."""

    eq: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    gte: float | None = None
    lte: float | None = None
    exists: bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {"in": v}
        if isinstance(v, dict):
            return v
        return {"eq": v}

    def test(self, present: bool, value: Any) -> bool:
        """Whether a field's value passes."""
        if self.exists is not None and present != self.exists:
            return False
        if self.eq is not None and value != self.eq:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        if self.not_in is not None and value in self.not_in:
            return False
        if self.gte is not None and not (isinstance(value, int | float) and value >= self.gte):
            return False
        return not (self.lte is not None and not (isinstance(value, int | float) and value <= self.lte))


def field_value(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of a dotted field in a JSON payload; None counts as absent."""
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return cur is not None, cur


def matches(when: dict[str, Condition], data: dict[str, Any]) -> bool:
    """Whether a payload passes every condition."""
    return all(cond.test(*field_value(data, path)) for path, cond in when.items())


def _field_annotation(model: type[BaseModel], path: str) -> Any:
    """The annotation of a dotted field of an event model, or raise naming the field."""
    cur: Any = model
    for part in path.split("."):
        fields = getattr(cur, "model_fields", None)
        if fields is None or part not in fields:
            raise ValueError(f"{path!r} is not a field of {model.__name__}")
        cur = fields[part].annotation
    return cur


def _check_condition(model: type[BaseModel], path: str, cond: Condition) -> None:
    ann = _field_annotation(model, path)
    values = [v for v in [cond.eq, *(cond.in_ or []), *(cond.not_in or [])] if v is not None]
    if not values:
        return
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(ann)
        for v in values:
            adapter.validate_python(v)
    except ValidationError:
        allowed = ""
        for arg in (ann, *getattr(ann, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, Enum):
                allowed = ": one of " + ", ".join(str(m.value) for m in arg)
        raise ValueError(f"{path!r} cannot take the value(s) {values}{allowed}") from None


class EventMatch(_Strict):
    """An event type (short name, e.g. CaseOpened) and conditions on its payload."""

    event: str
    when: dict[str, Condition] = {}

    @model_validator(mode="after")
    def _known(self) -> EventMatch:
        model = EVENTS.get(self.event)
        if model is None:
            raise ValueError(f"unknown event {self.event!r}; known: {', '.join(sorted(EVENTS))}")
        for path, cond in self.when.items():
            _check_condition(model, path, cond)
        return self

    def test(self, ev: Incoming) -> bool:
        """Whether an incoming event is this one and passes the conditions."""
        return ev.name == self.event and matches(self.when, ev.data)


# ---------------------------------------------------------------- actions


class _Action(_Strict):
    reason: str | None = None


class Escalate(_Action):
    do: Literal["escalate"]
    level: int = Field(ge=0, le=3, description="0 desk officer, 1 supervisor, 2 director, 3 inter-agency")


class Notify(_Action):
    do: Literal["notify"]
    to: str = Field(min_length=1, description="a role (supervisor) or a named on-duty contact")


class Repatriate(_Action):
    do: Literal["repatriate"]
    kind: Literal["living", "remains"]


class Flag(_Action):
    do: Literal["flag"]
    subject: Literal["agency", "employer"]


class OpenCase(_Action):
    do: Literal["open_case"]
    subject: Literal["agency", "employer", "country"]


class Tag(_Action):
    do: Literal["tag"]
    tag: str = Field(min_length=1)


class Refer(_Action):
    do: Literal["refer"]
    partner: str = Field(min_length=1)


Action = Annotated[Escalate | Notify | Repatriate | Flag | OpenCase | Tag | Refer, Field(discriminator="do")]


class Repeat(_Strict):
    every: Duration
    times: int = Field(ge=1, le=10, description="bounded: at most 10 repeats")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        if isinstance(v, dict) and "every" in v:
            v = {**v, "every": parse_duration(v["every"])}
        return v


class Stage(_Strict):
    """One step of an escalation chain: wait `after` (from the previous stage), then act."""

    after: Duration = 0
    actions: list[Action] = Field(min_length=1)
    repeat: Repeat | None = None

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        if isinstance(v, dict) and "after" in v:
            v = {**v, "after": parse_duration(v["after"])}
        return v


class Deadline(_Strict):
    """If none of `until` happens for the same subject within the stages' times, act."""

    subject: Literal["case", "repatriation", "repatriation_step", "worker"] = "case"
    start: str | None = Field(None, description="payload field holding the start time; default event time")
    until: list[EventMatch] = Field(min_length=1)
    stages: list[Stage] = Field(min_length=1, max_length=10)


class Count(_Strict):
    """At least N triggering events with the same key within any span of `within` (a sliding
    window): fire; each event counts toward one firing at most."""

    at_least: int = Field(ge=1)
    within: Duration = Field(gt=0)
    by: list[str] = Field(min_length=1)
    # Other events that count the same member (incident) under the same conditions, e.g. a late
    # match (IncidentMatched) that names the agency the report did not: one incident counts once.
    also_on: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, v: Any) -> Any:
        if isinstance(v, dict) and "within" in v:
            v = {**v, "within": parse_duration(v["within"])}
        return v


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    description: str = ""
    enabled: bool = True
    trigger: EventMatch
    once_per: Literal["event", "subject"] = "event"  # immediate actions: per trigger, or once per case
    actions: list[Action] | None = None
    deadline: Deadline | None = None
    count: Count | None = None

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if (self.actions is None) == (self.deadline is None):
            raise ValueError("give either actions (immediate or with count) or a deadline, not both")
        if self.count is not None and self.actions is None:
            raise ValueError("a count rule needs actions")
        model = EVENTS[self.trigger.event]
        if self.deadline is not None:
            for f in SUBJECTS[self.deadline.subject]:
                _field_annotation(model, f)
            if self.deadline.start is not None:
                _field_annotation(model, self.deadline.start)
            for u in self.deadline.until:
                for f in SUBJECTS[self.deadline.subject]:
                    if f not in EVENTS[u.event].model_fields:
                        raise ValueError(f"{u.event} does not carry {f!r}, so it cannot end a chain on it")
        if self.count is not None:
            for f in self.count.by:
                _field_annotation(model, f)
            for name in self.count.also_on:
                other = EVENTS.get(name)
                if other is None:
                    raise ValueError(f"count.also_on: unknown event {name!r}")
                for f in [*self.count.by, *self.trigger.when]:
                    _field_annotation(other, f)
        return self

    def triggered_by(self, ev: Incoming) -> bool:
        """Whether an incoming event triggers the rule (for a count: also its `also_on` events)."""
        if self.trigger.test(ev):
            return True
        also = self.count.also_on if self.count is not None else []
        return ev.name in also and matches(self.trigger.when, ev.data)


class RuleSet(_Strict):
    version: int | None = Field(None, description="informative; the service numbers what it stores")
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id!r} appears twice")
            seen.add(r.id)
        return self

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


@dataclass
class RuleError:
    rule: str | None
    field: str
    reason: str


class InvalidRules(ValueError):
    """A rule file refused whole, with every problem named by rule id, field and reason."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__("; ".join(f"{e.rule or '-'}: {e.field}: {e.reason}" for e in errors))
        self.errors = errors


def load_rules(text: str) -> RuleSet:
    """Parse and validate a YAML rule file; raise InvalidRules naming each problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRules([RuleError(None, "(file)", f"not valid YAML: {exc}".splitlines()[0])]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise InvalidRules([RuleError(None, "rules", "the file must be a mapping with a list `rules`")])
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = list(e["loc"])
            rule: str | None = None
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                item = raw["rules"][loc[1]]
                rule = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"#{loc[1] + 1}"
                loc = loc[2:]
            # drop discriminator tags pydantic adds to union locations
            path = ".".join(str(p) for p in loc if p not in _ACTION_TAGS) or "(rule)"
            msg = str(e["msg"]).removeprefix("Value error, ")
            errors.append(RuleError(rule, path, msg))
        raise InvalidRules(errors) from None


_ACTION_TAGS = {"escalate", "notify", "repatriate", "flag", "open_case", "tag", "refer"}


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Incoming:
    """An event as the rules see it: id, short type name, time, JSON payload."""

    id: str
    name: str
    time: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, *, id: str, type: str, time: datetime, data: dict[str, Any]) -> Incoming | None:
        """From envelope parts; None for event types the rules cannot name."""
        name = SHORT_NAME.get(type)
        return cls(id=id, name=name, time=time, data=data) if name else None


def subject_key(kind: str, data: dict[str, Any]) -> str | None:
    """'case:<id>' or 'repatriation_step:<id>/<step>'; None when the payload lacks a field."""
    parts = []
    for f in SUBJECTS[kind]:
        present, value = field_value(data, f)
        if not present:
            return None
        parts.append(str(value))
    return f"{kind}:{'/'.join(parts)}"


def subject_keys(data: dict[str, Any]) -> list[str]:
    """Every subject an event is about (what chains it might end)."""
    return [k for kind in SUBJECTS if (k := subject_key(kind, data))]


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
    for i, st in enumerate(stages):
        at += int(st.get("after", 0))
        out.append(Slot(i, 0, at, st["actions"]))
        rep = st.get("repeat")
        if rep:
            for r in range(1, int(rep["times"]) + 1):
                at += int(rep["every"])
                out.append(Slot(i, r, at, st["actions"]))
    return out


def action_id(rule_id: str, stage: str, trigger: str, n: int) -> str:
    """Deterministic: the same rule, stage and trigger always give the same action ids."""
    return uuid.uuid5(ACTION_NS, f"{rule_id}|{stage}|{trigger}|{n}").hex


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
    f = Firing(rule_id=rule_id, stage=stage, trigger=trigger, subject=subject, at=at)
    case_id = facts.get("case_id")
    # A notification is routed by the level its stage escalates to (e.g. the director at 2).
    stage_level = max((int(a["level"]) for a in actions if a["do"] == "escalate"), default=None)
    about = {k: facts.get(k) for k in ("country", "category", "severity")}
    for n, a in enumerate(actions):
        aid = action_id(rule_id, stage, trigger, n)
        reason = a.get("reason") or description or rule_id
        do = a["do"]
        level = a.get("level") if do == "escalate" else stage_level if do in ("notify", "refer") else None
        common = {"action_id": aid, "rule_id": rule_id, "rule_version": rule_version, "reason": reason}
        if do in ("escalate", "notify", "tag", "refer"):
            if not case_id:
                f.skipped.append(f"{do}: the trigger names no case")
                continue
            ev: Event = EscalationAction(
                **common,
                kind=ActionKind(do),
                case_id=case_id,
                level=level,
                notify=a.get("to"),
                tag=a.get("tag"),
                partner=a.get("partner"),
                subject_kind="case",
                subject_id=case_id,
                fired_at=at,
                **about,
            )
            f.emissions.append(Emission(ev, case_id, aid))
        elif do in ("flag", "open_case"):
            kind = a["subject"]
            sid = {"agency": facts.get("agency_id"), "employer": facts.get("employer_name")}.get(
                kind, facts.get("country")
            )
            if not sid:
                f.skipped.append(f"{do}: the trigger names no {kind}")
                continue
            if do == "flag":
                ev = FlagRequested(
                    action_id=aid,
                    subject_kind=kind,
                    subject_id=sid,
                    rule_id=rule_id,
                    reason=reason,
                    requested_at=at,
                )
            else:
                ev = EscalationAction(
                    **common,
                    kind=ActionKind.OPEN_CASE,
                    case_id=case_id,
                    subject_kind=kind,
                    subject_id=sid,
                    fired_at=at,
                    incident_ids=list(members or []),
                    **about,
                )
            f.emissions.append(Emission(ev, sid, aid))
        elif do == "repatriate":
            if not facts.get("country"):
                f.skipped.append("repatriate: the trigger names no country")
                continue
            ev = RepatriationRequested(
                request_id=aid,
                kind=RepatriationKind(a["kind"]),
                case_id=case_id,
                worker_id=facts.get("worker_id"),
                worker_key=facts.get("worker_key"),
                country=facts["country"],
                requested_by="rule",
                reason=reason,
                requested_at=at,
            )
            f.emissions.append(Emission(ev, case_id or facts["country"], aid))
    return f


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

    def firing_id(self, members: list[str]) -> str:
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
    for m, t in members:
        if m not in consumed and (m not in earliest or t < earliest[m]):
            earliest[m] = t
    free = sorted(earliest.items(), key=lambda m: (m[1], m[0]))
    for i in range(len(free) - at_least + 1):
        if (free[i + at_least - 1][1] - free[i][1]).total_seconds() < within:
            return free[i : i + at_least]
    return None


@dataclass
class Decision:
    """What the rules make of one event: immediate firings, chains to start, counters to bump."""

    firings: list[Firing] = field(default_factory=list)
    starts: list[ChainStart] = field(default_factory=list)
    counts: list[CountHit] = field(default_factory=list)


def bucket_of(at: datetime, within: int) -> int:
    """The bucket (epoch-aligned, `within` seconds long) an event time falls in."""
    epoch = datetime(1970, 1, 1, tzinfo=at.tzinfo)
    return int((at - epoch).total_seconds()) // within


def in_force(loaded: list[tuple[int, datetime]], at: datetime) -> int:
    """The rule set version in force at a time: the last one loaded at or before it (the first
    one for anything older, since events are evaluated by whatever is in force when they come)."""
    ordered = sorted(loaded)
    if not ordered:
        raise ValueError("no rule set is stored")
    version = ordered[0][0]
    for v, loaded_at in ordered:
        if loaded_at <= at:
            version = v
    return version


def evaluate(rules: RuleSet, version: int, ev: Incoming) -> Decision:
    """What the given rule set makes of an event (pure)."""
    out = Decision()
    for rule in rules.rules:
        if not rule.enabled or not rule.triggered_by(ev):
            continue
        facts = facts_of(ev.data)
        actions = [a.model_dump(mode="json", exclude_none=True) for a in rule.actions or []]
        if rule.deadline is not None:
            subject = subject_key(rule.deadline.subject, ev.data)
            if subject is None:
                continue
            started = ev.time
            if rule.deadline.start:
                present, value = field_value(ev.data, rule.deadline.start)
                if not present:
                    continue
                started = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
            out.starts.append(
                ChainStart(
                    id=uuid.uuid5(ACTION_NS, f"chain|{rule.id}|{subject}|{ev.id}").hex,
                    rule_id=rule.id,
                    rule_version=version,
                    description=rule.description,
                    subject=subject,
                    trigger=ev.id,
                    started_at=started,
                    stages=frozen_stages(rule.deadline),
                    until=frozen_until(rule.deadline),
                    facts=facts,
                    trigger_at=ev.time,
                )
            )
        elif rule.count is not None:
            parts = [field_value(ev.data, f) for f in rule.count.by]
            if not all(p for p, _ in parts):
                continue
            key = "/".join(str(v) for _, v in parts)
            out.counts.append(
                CountHit(
                    rule_id=rule.id,
                    rule_version=version,
                    key=key,
                    bucket=bucket_of(ev.time, rule.count.within),
                    within=rule.count.within,
                    member=str(ev.data.get("incident_id") or ev.id),
                    at=ev.time,
                    at_least=rule.count.at_least,
                    actions=actions,
                    description=rule.description,
                    facts=facts,
                )
            )
        else:
            subject = subject_key("case", ev.data)
            trigger = subject if rule.once_per == "subject" and subject else ev.id
            out.firings.append(
                build_firing(
                    rule_id=rule.id,
                    rule_version=version,
                    stage="now",
                    trigger=trigger,
                    subject=subject,
                    actions=actions,
                    facts=facts,
                    description=rule.description,
                    at=ev.time,
                )
            )
    return out


def count_firing(hit: CountHit, window: list[tuple[str, datetime]], at: datetime) -> Firing:
    """The firing of a counting rule: `window` is the members it counted (id, time), earliest first."""
    members = [m for m, _ in window]
    f = build_firing(
        rule_id=hit.rule_id,
        rule_version=hit.rule_version,
        stage=f"window:{window[0][1].isoformat()}",
        trigger=hit.firing_id(members),
        subject=f"{hit.rule_id}:{hit.key}",
        actions=hit.actions,
        facts=hit.facts,
        description=f"{hit.description} ({len(members)} within the window: {', '.join(members[:10])})",
        at=at,
        members=members,
    )
    return f


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


def chain_doc(s: ChainStart, *, created_at: datetime) -> dict[str, Any]:
    """The stored form of a new chain: its rule's stages and ending events frozen into it."""
    return {
        "_id": s.id,
        "rule_id": s.rule_id,
        "rule_version": s.rule_version,
        "description": s.description,
        "subject": s.subject,
        "trigger": s.trigger,
        "trigger_at": s.trigger_at or s.started_at,
        "started_at": s.started_at,
        "stages": s.stages,
        "until": s.until,
        "facts": s.facts,
        "slot": 0,
        "slots": len(schedule(s.stages)),
        "due_at": s.first_due,
        "state": "pending",
        "created_at": created_at,
    }


def late_slots(chain: dict[str, Any], met_at: datetime) -> list[Slot]:
    """The slots of a chain that fired although its deadline was met (due after `met_at`)."""
    started = chain["started_at"]
    fired = schedule(chain["stages"])[: int(chain.get("slot", 0))]
    return [sl for sl in fired if started + timedelta(seconds=sl.offset) > met_at]


def undo_plan(actions: list[str]) -> tuple[list[str], list[str], list[int]]:
    """What can be undone of fired actions (their summaries, e.g. 'notify:supervisor').

    (undone, not undone, indexes of the notify/refer actions whose delivery is withdrawn).
    """
    undone: list[str] = []
    stands: list[str] = []
    withdraw: list[int] = []
    for i, a in enumerate(actions):
        kind = a.partition(":")[0]
        match kind:
            case "notify" | "refer":
                withdraw.append(i)
                undone.append(f"{a}: withdrawn unless already sent (its outcome follows)")
            case "escalate":
                stands.append(f"{a}: the level stands; levels are never lowered automatically")
            case "tag":
                stands.append(f"{a}: the tag stands")
            case "repatriate":
                stands.append(f"{a}: the repatriation request stands; cancel it there if not needed")
            case "flag":
                stands.append(f"{a}: the flag stands")
            case _:
                stands.append(f"{a}: stands")
    return undone, stands, withdraw
