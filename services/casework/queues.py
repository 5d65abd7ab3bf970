"""casework's desk queues and timings, as data in queues.yaml: validated whole with pydantic, so
a bad file is refused at start with every problem named by file, entry and field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.casework.domain import Family, family_of
from shared.settings import Settings
from shared.vocab import Category, Region, Severity, region_of

QUEUES_FILE = Path(__file__).parent / "queues.yaml"


class QueueKind(StrEnum):
    TRAFFICKING = "trafficking"
    DEATH = "death"
    GENERAL = "general"


class Queue(BaseModel):
    """One desk queue of queues.yaml: the cases of one region of destination and one kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    region: Region
    kind: QueueKind
    title: str = Field(min_length=1)


class QueuesFile(BaseModel):
    """queues.yaml as written: the claim lease, the acknowledge deadlines and the queues."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    claim_lease_minutes: int = Field(gt=0, strict=True)
    acknowledge_within_minutes: dict[Severity, int]
    queues: list[Queue]

    @field_validator("acknowledge_within_minutes")
    @classmethod
    def _every_severity(cls, value: dict[Severity, int]) -> dict[Severity, int]:
        missing = [s.value for s in Severity if s not in value]
        if missing:
            raise ValueError(f"a deadline is needed for every severity; missing: {', '.join(missing)}")
        if any(v <= 0 for v in value.values()):
            raise ValueError("deadlines are whole minutes above 0")
        return value


@dataclass(frozen=True)
class QueueError:
    """One problem of a queues file: the entry (a queue's id, `queues#n` when it has none,
    `(settings)` for the lease and deadlines) and the field within it."""

    entry: str
    field: str
    reason: str


class InvalidQueues(ValueError):
    """A queues file refused whole, every problem named by file, entry and field."""

    def __init__(self, file: str, errors: list[QueueError]) -> None:
        super().__init__(f"{file}: " + "; ".join(f"{e.entry}: {e.field}: {e.reason}" for e in errors))
        self.file = file
        self.errors = errors


@dataclass(frozen=True)
class DeskQueues:
    """Queues and timings, loaded from queues.yaml."""

    queues: dict[str, Queue]
    claim_lease: timedelta
    acknowledge_within: dict[Severity, timedelta]

    def queue_for(self, *, country: str, category: Category | str) -> str:
        """The queue of a case: region of its destination country and its kind."""
        region, kind = region_of(country), kind_of(category)
        for q in self.queues.values():
            if q.region == region and q.kind == kind:
                return q.id
        raise LookupError(f"no queue for {region}/{kind}")

    def due_at(self, *, opened_at: datetime, severity: Severity | str) -> datetime:
        """The acknowledge deadline of a case opened at opened_at."""
        return opened_at + self.acknowledge_within[Severity(severity)]


def kind_of(category: Category | str) -> QueueKind:
    fam = family_of(category)
    if fam == Family.TRAFFICKING:
        return QueueKind.TRAFFICKING
    if fam == Family.DEATH:
        return QueueKind.DEATH
    return QueueKind.GENERAL


def _queue_entry(raw: Any, index: int) -> str:
    item = raw["queues"][index] if isinstance(raw.get("queues"), list) else None
    return str(item["id"]) if isinstance(item, dict) and item.get("id") else f"queues#{index + 1}"


def _schema_errors(raw: dict[str, Any], exc: ValidationError) -> list[QueueError]:
    errors = []
    for e in exc.errors():
        loc = list(e["loc"])
        if len(loc) >= 2 and loc[0] == "queues" and isinstance(loc[1], int):
            entry, rest = _queue_entry(raw, loc[1]), loc[2:]
        else:
            entry, rest = "(settings)", loc
        field = ".".join(str(p) for p in rest) or "(entry)"
        errors.append(QueueError(entry, field, str(e["msg"]).removeprefix("Value error, ")))
    return errors


def _coverage_errors(queues: list[Queue]) -> list[QueueError]:
    """Every (region, kind) has exactly one queue, and queue ids are unique."""
    errors: list[QueueError] = []
    seen_ids: set[str] = set()
    seen_pairs: dict[tuple[Region, QueueKind], str] = {}
    for q in queues:
        if q.id in seen_ids:
            errors.append(QueueError(q.id, "id", "another queue has this id"))
        seen_ids.add(q.id)
        pair = (q.region, q.kind)
        if pair in seen_pairs:
            errors.append(
                QueueError(
                    q.id, "region", f"queue {seen_pairs[pair]} already takes {q.region.value}/{q.kind.value}"
                )
            )
        seen_pairs.setdefault(pair, q.id)
    for region in Region:
        for kind in QueueKind:
            if (region, kind) not in seen_pairs:
                errors.append(
                    QueueError("queues", "(list)", f"no queue for region {region.value}, kind {kind.value}")
                )
    return errors


def parse_queues(raw: Any, *, file: str = "queues.yaml") -> DeskQueues:
    """Desk queues from the YAML structure, validated whole; InvalidQueues names file, entry and
    field of every problem. Every (region, kind) must have exactly one queue."""
    if not isinstance(raw, dict):
        raise InvalidQueues(file, [QueueError("(file)", "(file)", "the file must be a mapping")])
    try:
        parsed = QueuesFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidQueues(file, _schema_errors(raw, exc)) from None
    errors = _coverage_errors(parsed.queues)
    if errors:
        raise InvalidQueues(file, errors)
    return DeskQueues(
        queues={q.id: q for q in parsed.queues},
        claim_lease=timedelta(minutes=parsed.claim_lease_minutes),
        acknowledge_within={k: timedelta(minutes=v) for k, v in parsed.acknowledge_within_minutes.items()},
    )


@lru_cache(maxsize=1)
def load_queues(path: str | None = None) -> DeskQueues:
    """The desk queues and timings in queues.yaml (cached)."""
    file = Path(path or QUEUES_FILE)
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InvalidQueues(
            str(file), [QueueError("(file)", "(file)", f"not valid YAML: {exc}".splitlines()[0])]
        ) from None
    return parse_queues(raw, file=str(file))


def claim_lease(settings: Settings) -> timedelta:
    """How long a claim holds a case unacknowledged: the settings' lease, else queues.yaml's."""
    minutes = settings.claim_lease_minutes
    return timedelta(minutes=minutes) if minutes else load_queues().claim_lease
