"""casework's domain, without I/O: category families, priority, queues (queues.yaml), the case lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import retention
from shared.events.casework import CaseStatus
from shared.vocab import SEVERITY_RANK, Category, Region, Severity, region_of

QUEUES_FILE = Path(__file__).parent / "queues.yaml"

S = CaseStatus

# --- families: incidents of one worker in one family belong to one open case ----------------


class Family(StrEnum):
    ABUSE = "abuse"
    WAGES_CONTRACT = "wages_contract"
    HEALTH = "health"
    DEATH = "death"
    TRAFFICKING = "trafficking"
    LEGAL = "legal"  # detained, legal case, undocumented
    WELFARE = "welfare"  # wants to go home, lost contact
    EVACUATION = "evacuation"


FAMILY_OF: dict[Category, Family] = {
    Category.PHYSICAL_ABUSE: Family.ABUSE,
    Category.SEXUAL_ABUSE: Family.ABUSE,
    Category.PSYCHOLOGICAL_ABUSE: Family.ABUSE,
    Category.UNPAID_WAGES: Family.WAGES_CONTRACT,
    Category.CONTRACT_MISMATCH: Family.WAGES_CONTRACT,
    Category.UNILATERAL_DISMISSAL: Family.WAGES_CONTRACT,
    Category.OVERCHARGED_FEES: Family.WAGES_CONTRACT,
    Category.DOCUMENTS_WITHHELD: Family.WAGES_CONTRACT,
    Category.ILLNESS: Family.HEALTH,
    Category.INJURY: Family.HEALTH,
    Category.DEATH: Family.DEATH,
    Category.TRAFFICKING: Family.TRAFFICKING,
    Category.DETAINED: Family.LEGAL,
    Category.LEGAL_CASE: Family.LEGAL,
    Category.UNDOCUMENTED: Family.LEGAL,
    Category.WANTS_TO_GO_HOME: Family.WELFARE,
    Category.LOST_CONTACT: Family.WELFARE,
    Category.EVACUATION: Family.EVACUATION,
}


def family_of(category: Category | str) -> Family:
    """The family of a category: the unit within which a worker's incidents join one case."""
    return FAMILY_OF[Category(category)]


def is_group(category: Category | str, people_affected: int) -> bool:
    """An evacuation, or any incident affecting several people, opens a group case."""
    return Category(category) == Category.EVACUATION or people_affected > 1


def open_key(worker_key: str, category: Category | str) -> str:
    """The key that at most one open case holds (a unique index makes it so)."""
    return f"{worker_key}|{family_of(category).value}"


def placement_key(
    *, worker_key: str, category: Category | str, country: str, people_affected: int, case_id: str
) -> tuple[str, str | None]:
    """(open_key, join_key) of a new case: what later incidents join it by.

    A worker's incidents of one family join the worker's open case. Evacuation reports join the
    open evacuation case of their country (the same event and area), whoever they name; another
    group report (many people, not an evacuation) stands alone.
    """
    if Category(category) == Category.EVACUATION:
        key = f"evacuation|{country}"
        return key, key
    if is_group(category, people_affected):
        return f"group|{case_id}", None
    key = open_key(worker_key, category)
    return key, key


def closed_key(case_id: str) -> str:
    """The open_key a case holds once resolved or closed: unique, and joins nothing."""
    return f"closed|{case_id}"


# --- priority: 0 (lowest) .. 10 (highest) ----------------------------------------------------

MAX_PRIORITY = 10


def priority(
    *, severity: Severity | str, category: Category | str, non_procedural: bool, people_affected: int = 1
) -> int:
    """Priority from severity, category and vulnerability (non-procedural, many affected)."""
    p = SEVERITY_RANK[Severity(severity)] * 2
    fam = family_of(category)
    if fam in (Family.TRAFFICKING, Family.DEATH):
        p += 3
    elif Category(category) in (Category.SEXUAL_ABUSE, Category.PHYSICAL_ABUSE, Category.DETAINED):
        p += 1
    if non_procedural:
        p += 1
    if people_affected > 1:
        p += 1
    return min(p, MAX_PRIORITY)


# --- queues ------------------------------------------------------------------------------------


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


# --- lifecycle ----------------------------------------------------------------------------------


class Action(StrEnum):
    TRIAGE = "triage"
    CLAIM = "claim"
    RELEASE = "release"  # a claim given back or expired
    ACKNOWLEDGE = "acknowledge"
    REASSIGN = "reassign"
    AWAIT_REPATRIATION = "await_repatriation"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"


OPEN_STATUSES = frozenset({S.NEW, S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS, S.AWAITING_REPATRIATION})
WAITING = frozenset({S.NEW, S.TRIAGED})  # in a queue, claimable

# Which roles may take each action ("system" covers the lease sweeper and Kafka handlers).
ROLES: dict[Action, frozenset[str]] = {
    Action.TRIAGE: frozenset({"officer", "supervisor"}),
    Action.CLAIM: frozenset({"officer", "supervisor"}),
    Action.RELEASE: frozenset({"officer", "supervisor", "system"}),
    Action.ACKNOWLEDGE: frozenset({"officer", "supervisor"}),
    Action.REASSIGN: frozenset({"supervisor"}),
    Action.AWAIT_REPATRIATION: frozenset({"officer", "supervisor", "system"}),
    Action.RESOLVE: frozenset({"officer", "supervisor"}),
    Action.CLOSE: frozenset({"supervisor"}),
    Action.REOPEN: frozenset({"supervisor"}),
}

# The timestamp each status stamps when entered, so each stage's duration is known.
STAMP: dict[CaseStatus, str] = {
    S.TRIAGED: "triaged_at",
    S.ASSIGNED: "assigned_at",
    S.IN_PROGRESS: "acknowledged_at",
    S.AWAITING_REPATRIATION: "awaiting_repatriation_at",
    S.RESOLVED: "resolved_at",
    S.CLOSED: "closed_at",
}


def transition(current: CaseStatus | str, action: Action, *, triaged: bool = False) -> CaseStatus | None:
    """The status after action from current, or None when the action is not allowed there.

    `triaged` tells where a released claim goes back to: triaged if it was triaged, else new.
    """
    match (CaseStatus(current), action):
        case (S.NEW, Action.TRIAGE):
            return S.TRIAGED
        case (S.NEW | S.TRIAGED, Action.CLAIM):
            return S.ASSIGNED
        case (S.ASSIGNED, Action.RELEASE):
            return S.TRIAGED if triaged else S.NEW
        case (S.ASSIGNED, Action.ACKNOWLEDGE):
            return S.IN_PROGRESS
        case (S.NEW | S.TRIAGED | S.ASSIGNED | S.IN_PROGRESS | S.AWAITING_REPATRIATION, Action.REASSIGN):
            return S.ASSIGNED
        case (S.IN_PROGRESS, Action.AWAIT_REPATRIATION):
            return S.AWAITING_REPATRIATION
        case (S.IN_PROGRESS | S.AWAITING_REPATRIATION, Action.RESOLVE):
            return S.RESOLVED
        case (S.RESOLVED, Action.CLOSE):
            return S.CLOSED
        case (S.RESOLVED | S.CLOSED, Action.REOPEN):
            return S.TRIAGED
        case _:
            return None


def allowed(action: Action, roles: frozenset[str] | set[str]) -> bool:
    """Whether any of the roles may take the action."""
    return bool(ROLES[action] & set(roles))


def is_open(status: CaseStatus | str) -> bool:
    return CaseStatus(status) in OPEN_STATUSES


MAX_ESCALATION_LEVEL = 3


def escalation_level(current: int, wanted: int | None) -> int:
    """The level after an escalation: the wanted level, else one up; never down, at most 3."""
    target = current + 1 if wanted is None else wanted
    return max(current, min(target, MAX_ESCALATION_LEVEL))


# --- what a desk user may do now ----------------------------------------------------------------

DESK_WORK_ROLES = frozenset({"officer", "supervisor"})

# The HTTP action each lifecycle action is posted to (casework's views use the same words).
ACTION_PATHS: dict[Action, str] = {
    Action.TRIAGE: "triage",
    Action.CLAIM: "claim",
    Action.ACKNOWLEDGE: "acknowledge",
    Action.RELEASE: "release",
    Action.REASSIGN: "reassign",
    Action.AWAIT_REPATRIATION: "awaiting-repatriation",
    Action.RESOLVE: "resolve",
    Action.CLOSE: "close",
    Action.REOPEN: "reopen",
}


def available_actions(
    *,
    status: CaseStatus | str,
    assignee: str | None,
    escalation_level: int,
    actor: str,
    roles: frozenset[str],
) -> list[str]:
    """The actions this user may take on a case now, as their HTTP names (the same checks as the writes).

    A console shows exactly these buttons; the writes still check everything again.
    """
    roles = frozenset(roles)
    supervisor = "supervisor" in roles
    holder = assignee is not None and assignee == actor
    out = []
    for action, path in ACTION_PATHS.items():
        if not allowed(action, roles) or transition(status, action) is None:
            continue
        if action == Action.ACKNOWLEDGE and not holder:
            continue
        if action in (Action.RELEASE, Action.AWAIT_REPATRIATION, Action.RESOLVE) and not (
            holder or supervisor
        ):
            continue
        out.append(path)
    if roles & DESK_WORK_ROLES:
        out += ["notes", "tags"]
        if is_open(status):
            out.append("mission-requests")
    if supervisor and is_open(status):
        out.append("priority")
        if escalation_level < MAX_ESCALATION_LEVEL:
            out.append("escalate")
    return out


# ---- Retention (UU PDP): a case closed long ago keeps its shape, not the person ----


def anonymised(case: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The fields a closed case keeps once anonymised: the worker's name and every free text go
    (reasons, notes, resolution, requests to missions and their answers); statuses, times,
    categories, severity, country, queue, officers and ids stay, so durations and counts do."""
    gone = retention.ANONYMISED

    def blank(text: Any) -> Any:
        return gone if text else text

    timeline = [
        {**e, **{k: blank(e.get(k)) for k in ("reason", "resolution") if k in e}}
        for e in case.get("timeline") or []
    ]
    requests = {
        rid: {**r, "text": blank(r.get("text")), "answer": blank(r.get("answer"))}
        for rid, r in (case.get("mission_requests") or {}).items()
    }
    return {
        "worker_name": blank(case.get("worker_name")),
        "resolution": blank(case.get("resolution")),
        "timeline": timeline,
        "mission_requests": requests,
        "anonymised_at": now,
    }
