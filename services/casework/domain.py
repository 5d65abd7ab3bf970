"""casework's rules, without I/O: category families, priority, the case lifecycle (queues: queues.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from shared import retention
from shared.events.casework import CaseStatus
from shared.vocab import SEVERITY_RANK, Category, Severity

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
WORKED = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.AWAITING_REPATRIATION})  # an officer's load

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
