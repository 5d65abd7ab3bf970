"""Escalation rules as data: the rule file's schema, its validation, and the events it names.

A rule file (YAML) is parsed and validated here; the live engine (engine.py) and the dry run
(simulate.py) both evaluate events through evaluation.py, so a dry run cannot drift from what
the service does. Plain Python, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

import shared.events  # noqa: F401  (registers every event type)
from shared import durations
from shared.envelope import EVENT_TYPES, Event
from shared.topics import CASES, DEPARTURES, INCIDENTS, REPATRIATIONS

CONSUMED = (CASES, INCIDENTS, DEPARTURES, REPATRIATIONS)

# Short names a rule file uses ("CaseOpened") for the event types escalation consumes.
EVENTS: dict[str, type[Event]] = {cls.__name__: cls for cls in EVENT_TYPES.values() if cls.topic in CONSUMED}
SHORT_NAME: dict[str, str] = {cls.type: name for name, cls in EVENTS.items()}

# What a deadline chain follows: the payload fields that name one subject.
SUBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "case": ("case_id",),
    "repatriation": ("repatriation_id",),
    "repatriation_step": ("repatriation_id", "step"),
    "worker": ("worker_id",),
}


def duration_seconds(value: Any) -> int:
    """Seconds of '90s', '30m', '4h', '30d' (or a plain number of seconds): shared.durations."""
    return int(durations.parse_duration(value).total_seconds())


def _in_seconds(data: Any, key: str) -> Any:
    """A rule part's raw input with its duration field `key` in seconds ('4h' -> 14400)."""
    if isinstance(data, dict) and key in data:
        return {**data, key: duration_seconds(data[key])}
    return data


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
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"in": data}
        if isinstance(data, dict):
            return data
        return {"eq": data}

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
        for value in values:
            adapter.validate_python(value)
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
    def _durations(cls, data: Any) -> Any:
        return _in_seconds(data, "every")


class Stage(_Strict):
    """One step of an escalation chain: wait `after` (from the previous stage), then act."""

    after: Duration = 0
    actions: list[Action] = Field(min_length=1)
    repeat: Repeat | None = None

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        return _in_seconds(data, "after")


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
    def _durations(cls, data: Any) -> Any:
        return _in_seconds(data, "within")


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
            for name in SUBJECT_FIELDS[self.deadline.subject]:
                _field_annotation(model, name)
            if self.deadline.start is not None:
                _field_annotation(model, self.deadline.start)
            for ending in self.deadline.until:
                for name in SUBJECT_FIELDS[self.deadline.subject]:
                    if name not in EVENTS[ending.event].model_fields:
                        raise ValueError(
                            f"{ending.event} does not carry {name!r}, so it cannot end a chain on it"
                        )
        if self.count is not None:
            for path in self.count.by:
                _field_annotation(model, path)
            for name in self.count.also_on:
                other = EVENTS.get(name)
                if other is None:
                    raise ValueError(f"count.also_on: unknown event {name!r}")
                for path in [*self.count.by, *self.trigger.when]:
                    _field_annotation(other, path)
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
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
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
        for error in exc.errors():
            loc = list(error["loc"])
            rule: str | None = None
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                item = raw["rules"][loc[1]]
                rule = str(item.get("id")) if isinstance(item, dict) and item.get("id") else f"#{loc[1] + 1}"
                loc = loc[2:]
            # drop discriminator tags pydantic adds to union locations
            path = ".".join(str(p) for p in loc if p not in _ACTION_TAGS) or "(rule)"
            msg = str(error["msg"]).removeprefix("Value error, ")
            errors.append(RuleError(rule, path, msg))
        raise InvalidRules(errors) from None


_ACTION_TAGS = {"escalate", "notify", "repatriate", "flag", "open_case", "tag", "refer"}


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
