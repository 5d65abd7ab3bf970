"""Events owned by casework: the life of a protection case."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime

from shared.envelope import Event, event_type
from shared.topics import CASES
from shared.vocab import Category, Severity


class CaseStatus(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"  # claimed by an officer, not yet acknowledged
    IN_PROGRESS = "in_progress"  # acknowledged
    AWAITING_REPATRIATION = "awaiting_repatriation"
    RESOLVED = "resolved"
    CLOSED = "closed"


@event_type("lindungi.casework.case.opened.v1", CASES)
class CaseOpened(Event):
    case_id: str
    incident_id: str
    worker_key: str
    worker_id: str | None = None
    non_procedural: bool = False
    mission_id: str
    country: str
    category: Category
    severity: Severity
    priority: int
    group: bool = False  # an evacuation case holding many workers
    people_affected: int = 1
    agency_id: str | None = None
    employer_name: str | None = None
    opened_at: AwareDatetime
    queue: str | None = None  # desk queue, e.g. "east_asia-general"
    family: str | None = None  # category family within which a worker's incidents join one case
    kind: str = "protection"  # or "investigation" (opened by an escalation action)
    source_case_id: str | None = None  # for an investigation: the case that prompted it


class CaseChange(Event):
    """A change of a case, by whom and why. Each subclass is one event type."""

    case_id: str
    status: CaseStatus  # the status after the change
    previous_status: CaseStatus | None = None
    actor: str  # officer id, "system", or "rule:<id>"
    reason: str | None = None
    assignee: str | None = None
    category: Category | None = None
    severity: Severity | None = None
    priority: int | None = None
    level: int | None = None  # escalation level after an escalation
    incident_id: str | None = None  # for merged
    agency_id: str | None = None  # the case's placement agency: registry counts open cases per agency
    at: AwareDatetime


@event_type("lindungi.casework.case.merged.v1", CASES)
class CaseMerged(CaseChange):
    """Another incident joined this case."""


@event_type("lindungi.casework.case.worker-matched.v1", CASES)
class CaseWorkerMatched(CaseChange):
    """The case's worker was matched to a departure after the report (late matching): the new facts."""

    worker_id: str
    non_procedural: bool = False
    home_province: str | None = None
    departure_id: str | None = None


@event_type("lindungi.casework.case.triaged.v1", CASES)
class CaseTriaged(CaseChange):
    """The desk triaged the case, perhaps into another category (its category after triage)."""

    previous_category: Category | None = None  # set when triage changed the category
    worker_id: str | None = None  # the registered worker: a death confirmed here reaches the registry
    group: bool = False


@event_type("lindungi.casework.case.claimed.v1", CASES)
class CaseClaimed(CaseChange):
    pass


@event_type("lindungi.casework.case.released.v1", CASES)
class CaseReleased(CaseChange):
    """A claim not acknowledged within its lease went back to the queue, or was reassigned."""


@event_type("lindungi.casework.case.acknowledged.v1", CASES)
class CaseAcknowledged(CaseChange):
    pass


@event_type("lindungi.casework.case.escalated.v1", CASES)
class CaseEscalated(CaseChange):
    pass


@event_type("lindungi.casework.case.priority-changed.v1", CASES)
class CasePriorityChanged(CaseChange):
    pass


@event_type("lindungi.casework.case.awaiting-repatriation.v1", CASES)
class CaseAwaitingRepatriation(CaseChange):
    pass


@event_type("lindungi.casework.case.resolved.v1", CASES)
class CaseResolved(CaseChange):
    pass


@event_type("lindungi.casework.case.closed.v1", CASES)
class CaseClosed(CaseChange):
    pass


@event_type("lindungi.casework.case.reopened.v1", CASES)
class CaseReopened(CaseChange):
    pass


@event_type("lindungi.casework.case.anonymised.v1", CASES)
class CaseAnonymised(Event):
    """A case closed long ago was anonymised (retention): its incidents' reports may go too."""

    case_id: str
    incident_ids: list[str]
    anonymised_at: AwareDatetime
