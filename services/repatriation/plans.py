"""The workflow plans: each kind's ordered steps as data (the YAML files in workflows/), validated.

A plan file is checked whole with the pydantic models below; a bad one is refused with every
problem named by file, entry (the step) and field, and stops the service at start.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.durations import parse_duration
from shared.events.repatriation import RepatriationKind

FOLDER = Path(__file__).parent / "workflows"

Owner = Literal["mission", "desk", "debarkation", "region", "system"]
EffectKind = Literal["booking", "funding"]
# What releasing a held effect is called on the timeline.
EFFECT_UNDONE: dict[str, str] = {"booking": "booking released", "funding": "funding returned"}
# A datum a completion must carry: one of a list of values, or a kind of value.
Requirement = list[str] | Literal["text", "bool", "time"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Refusal(_Strict):
    """A completion the request's facts rule out: when every fact named has its value, the datum
    named may not take its value (e.g. no passport when the passport is missing)."""

    facts: dict[str, bool] = Field(min_length=1)
    data: dict[str, Any] = Field(min_length=1, max_length=1)
    reason: str = Field(min_length=3)

    def check(self, facts: dict[str, bool], data: dict[str, Any]) -> dict[str, str] | None:
        """The error this refusal gives a completion, or None when it does not apply."""
        if any(facts.get(name) is not value for name, value in self.facts.items()):
            return None
        ((name, value),) = self.data.items()
        return {"field": f"data.{name}", "reason": self.reason} if data.get(name) == value else None


class StepDef(_Strict):
    """One step of a plan, as the YAML file states it (living.yaml explains each key)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    owner: Owner
    due: timedelta = timedelta(hours=24)
    when: str | None = None  # a fact; false means "not applicable", skipped on activation
    skippable: bool = Field(False, strict=True)
    evidence: bool = Field(False, strict=True)
    requires: dict[str, Requirement] = Field(default_factory=dict)
    refuse: tuple[Refusal, ...] = ()
    undo: EffectKind | None = None  # the effect completing it holds
    reroute_target: bool = Field(False, strict=True)
    on_event: str | None = None  # an event (another service's, or the service's own) that completes it
    hand_over: bool = Field(False, strict=True)  # the hand-over at home the region witnesses

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value: Any) -> timedelta:
        return parse_duration(value)  # shared.durations: one reading of a duration everywhere

    @field_validator("requires", mode="before")
    @classmethod
    def _requires(cls, value: Any) -> Any:
        return {} if value is None else value


class Plan(_Strict):
    """A workflow kind's ordered steps; the last is the service's own, done when all before are."""

    kind: RepatriationKind
    point_of_no_return: str | None = None
    steps: tuple[StepDef, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [s.name for s in self.steps]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"step names must be unique: {', '.join(twice)} appear more than once")
        if self.steps[-1].owner != "system":
            raise ValueError(f"the last step ({names[-1]}) completes the workflow: its owner must be system")
        if self.point_of_no_return is not None and self.point_of_no_return not in names:
            raise ValueError(f"point_of_no_return {self.point_of_no_return!r} is not a step")
        return self

    def step(self, name: str) -> StepDef | None:
        return next((s for s in self.steps if s.name == name), None)

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.name == name)

    @property
    def final(self) -> StepDef:
        """The last step: reaching it completes the workflow."""
        return self.steps[-1]


class PlanError(ValueError):
    """A plan refused whole, each problem named by file, entry (step) and field."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['file']}: {e['entry']}: {e['field']}: {e['reason']}" for e in errors))
        self.errors = errors


def parse_plan(data: Any, *, file: str = "(plan)") -> Plan:
    """A plan from its YAML data; PlanError naming file, entry and field on a malformed plan."""
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = list(e["loc"])
            entry = "(plan)"
            if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
                raw = data["steps"][loc[1]]
                named = isinstance(raw, dict) and isinstance(raw.get("name"), str)
                entry = f"step {raw['name']}" if named else f"step #{loc[1] + 1}"
                loc = loc[2:]
            reason = str(e["msg"]).removeprefix("Value error, ")
            field = ".".join(map(str, loc)) or "-"
            errors.append({"file": file, "entry": entry, "field": field, "reason": reason})
        raise PlanError(errors) from None


def load_folder(folder: Path) -> dict[RepatriationKind, Plan]:
    """Every plan in a folder, by kind; PlanError naming the file when one is malformed or missing."""
    plans: dict[RepatriationKind, Plan] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            reason = f"not valid YAML: {exc}".splitlines()[0]
            error = {"file": path.name, "entry": "(file)", "field": "-", "reason": reason}
            raise PlanError([error]) from None
        plan = parse_plan(data, file=path.name)
        plans[plan.kind] = plan
    missing = sorted(set(RepatriationKind) - set(plans))
    if missing:
        reason = f"no plan for {', '.join(missing)}"
        raise PlanError([{"file": str(folder), "entry": "(folder)", "field": "kind", "reason": reason}])
    return plans


@lru_cache(maxsize=1)
def load() -> dict[RepatriationKind, Plan]:
    """Every plan of workflows/, by kind (read once)."""
    return load_folder(FOLDER)
