"""A new case's document, built in one place (`case_document`) for both kinds of case: a
protection case opened by an accepted incident, and an investigation opened by an escalation
rule's action. Its CaseOpened event rides the insert (outbox)."""

from __future__ import annotations

from collections.abc import Iterable

from services.casework import changes, domain, queues, store
from services.casework.changes import entry
from shared.events.casework import CaseOpened, CaseStatus
from shared.events.escalation import EscalationAction
from shared.events.intake import IncidentAccepted
from shared.mongo import Doc
from shared.service import Runtime
from shared.vocab import Category, Severity, region_of


def case_document(
    rt: Runtime,
    opened: CaseOpened,
    *,
    event_id: str,
    keys: tuple[str, str | None],
    incident_ids: list[str],
    worker_keys: list[str],
    timeline: Iterable[Doc],
    **extra: object,
) -> Doc:
    """The stored document of a new case from its CaseOpened (what every case holds, waiting in
    its queue, applied-once for event_id), with the event in its outbox; `extra` adds what one
    kind of case holds besides."""
    doc = {
        "_id": opened.case_id,
        **opened.model_dump(mode="python", exclude={"case_id", "incident_id"}),
        "open_key": keys[0],
        "join_key": keys[1],
        "region": region_of(opened.country).value,
        "incident_ids": incident_ids,
        "worker_keys": worker_keys,
        **extra,
        "status": CaseStatus.NEW.value,
        "assignee": None,
        "escalation_level": 0,
        "tags": [],
        "resolution": None,
        "due_at": queues.load_queues().due_at(opened_at=opened.opened_at, severity=opened.severity),
        "updated_at": opened.opened_at,
        "mission_requests": {},
        "timeline": list(timeline),
        "_applied": [event_id],
    }
    return rt.outbox.on_insert(doc, [rt.outbox.entry(opened, key=opened.case_id)])


def protection_case(
    rt: Runtime,
    *,
    case_id: str,
    event_id: str,
    incident: IncidentAccepted,
    group: bool,
    keys: tuple[str, str | None],
) -> Doc:
    """The document of the case an accepted incident opens."""
    now = rt.clock.now()
    # A report for many people (an evacuation) is not one unregistered worker: never non-procedural.
    non_procedural = incident.match.non_procedural and not group
    prio = domain.priority(
        severity=incident.severity,
        category=incident.category,
        non_procedural=non_procedural,
        people_affected=incident.people_affected,
    )
    opened = CaseOpened(
        case_id=case_id,
        incident_id=incident.incident_id,
        worker_key=incident.worker_key,
        worker_id=incident.match.worker_id,
        non_procedural=non_procedural,
        mission_id=incident.mission_id,
        country=incident.country,
        category=incident.category,
        severity=incident.severity,
        priority=prio,
        group=group,
        people_affected=incident.people_affected,
        agency_id=incident.agency_id,
        employer_name=incident.employer_name,
        opened_at=now,
        queue=queues.load_queues().queue_for(country=incident.country, category=incident.category),
        family=domain.family_of(incident.category).value,
        kind="protection",
    )
    return case_document(
        rt,
        opened,
        event_id=event_id,
        keys=keys,
        incident_ids=[incident.incident_id],
        worker_keys=[incident.worker_key],
        timeline=[
            entry(at=now, kind="opened", by="system", incident_id=incident.incident_id, event_id=event_id),
            *(
                entry(at=now, kind="link_suggested", by="system", incident_id=other)
                for other in incident.suggested_incident_ids
            ),
        ],
        suggested_incident_ids=list(incident.suggested_incident_ids),
        worker_name=incident.worker_name,
    )


async def open_investigation(rt: Runtime, *, event_id: str, action: EscalationAction) -> None:
    """An escalation rule opens a new case (e.g. an agency investigation), id derived from the action."""
    now = rt.clock.now()
    source = await store.get(rt.db, action.case_id) if action.case_id else None
    case_id = changes.case_id_for(f"action:{action.action_id}")
    # The case that prompted it, else what the triggering events said (a counting rule's last
    # incident), else the country named as the subject; Indonesia only when nothing says more.
    country = (
        (source or {}).get("country")
        or action.country
        or (action.subject_id if action.subject_kind == "country" and action.subject_id else "ID")
    )
    category = Category((source or {}).get("category") or action.category or Category.LEGAL_CASE)
    severity = Severity((source or {}).get("severity") or action.severity or Severity.HIGH)
    subject = f"{action.subject_kind}:{action.subject_id or action.case_id}"
    opened = CaseOpened(
        case_id=case_id,
        incident_id=action.action_id,
        worker_key=(source or {}).get("worker_key") or subject,
        mission_id=(source or {}).get("mission_id") or "desk",
        country=country,
        category=category,
        severity=severity,
        priority=domain.priority(severity=severity, category=category, non_procedural=False),
        agency_id=action.subject_id if action.subject_kind == "agency" else None,
        employer_name=action.subject_id if action.subject_kind == "employer" else None,
        opened_at=now,
        queue=queues.load_queues().queue_for(country=country, category=category),
        kind="investigation",
        source_case_id=action.case_id,
    )
    first = entry(
        at=now,
        kind="opened",
        by=f"rule:{action.rule_id}",
        reason=action.reason,
        event_id=event_id,
        incident_ids=list(action.incident_ids) or None,
    )
    doc = case_document(
        rt,
        opened,
        event_id=event_id,
        keys=(f"investigation|{case_id}", None),
        incident_ids=[],  # it holds no incident: a redelivered report still finds its own case
        worker_keys=[],
        timeline=[first],
        subject=subject,
        trigger_incident_ids=list(action.incident_ids),
    )
    if await store.insert_new(rt.db, doc) == "inserted":
        rt.relay.wake(case_id)
