"""casework's use cases, shared by the HTTP side and the Kafka side.

Every change of a case is ONE find_one_and_update that carries the change, its timeline entry
and its outgoing events (outbox), filtered on the status that was read: if the case moved
meanwhile, nothing is written and the caller answers 409 (HTTP) or re-reads (handlers).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, OperationFailure

from services.casework import domain, metrics, store
from services.casework.domain import Action
from shared.envelope import Event
from shared.events.casework import (
    CaseAcknowledged,
    CaseAnonymised,
    CaseAwaitingRepatriation,
    CaseChange,
    CaseClaimed,
    CaseClosed,
    CaseEscalated,
    CaseMerged,
    CaseOpened,
    CasePriorityChanged,
    CaseReleased,
    CaseReopened,
    CaseResolved,
    CaseStatus,
    CaseTriaged,
    CaseWorkerMatched,
)
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.mongo import Doc, applied_once, merge_updates
from shared.service import Runtime
from shared.vocab import SEVERITY_RANK, Category, Severity, region_of

CASE_NS = uuid.UUID("6f1c1d52-53f4-4e8b-9a57-1a2f0c7d3e10")


def case_id_for(source_id: str) -> str:
    """The id of the case an incident (or an escalation action) opens: derived, so a redelivery finds it."""
    return uuid.uuid5(CASE_NS, source_id).hex


class NotFound(Exception):
    """No such case."""


class Conflict(Exception):
    """The action is not allowed in the case's current state."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


OPEN_ELSEWHERE = "another open case of this worker and category family exists"


async def check_reopen(rt: Runtime, case_id: str) -> None:
    """Conflict when a newer open case holds the worker's incidents (checked before writing; the
    unique index decides a race)."""
    doc = await store.get_raw(rt.db, case_id)
    if doc is None:
        raise NotFound(case_id)
    key = doc.get("join_key")
    if key and doc.get("open_key") != key:
        holder = await store.find_open(rt.db, key)
        if holder is not None and holder["_id"] != case_id:
            raise Conflict(doc["status"], OPEN_ELSEWHERE)


class Forbidden(Exception):
    """The caller's role or relation to the case does not allow the action."""


@dataclass
class Plan:
    """What one change writes: an update, extra filter conditions, and the events it emits."""

    update: Doc
    events: list[Event] = field(default_factory=list)
    filter: Doc = field(default_factory=dict)


def entry(*, at: datetime, kind: str, by: str, reason: str | None = None, **extra: Any) -> Doc:
    """One timeline entry: what happened, when, by whom and why."""
    return {
        "at": at,
        "kind": kind,
        "by": by,
        "reason": reason,
        **{k: v for k, v in extra.items() if v is not None},
    }


def _push_timeline(*entries: Doc) -> Doc:
    return {"$push": {"timeline": {"$each": list(entries)}}}


async def change(rt: Runtime, case_id: str, build: Callable[[Doc], Plan | None], *, retries: int = 0) -> Doc:
    """Read the case, build the change for its current state, and write it only if the status is unchanged.

    build returns None when there is nothing to do (an event applied before); it raises Conflict
    when the action is not allowed. With retries=0 (HTTP), a lost race answers Conflict.
    """
    for _ in range(retries + 1):
        doc = await store.get_raw(rt.db, case_id)
        if doc is None:
            raise NotFound(case_id)
        plan = build(doc)
        if plan is None:
            # nothing to do (an event applied before): its waiting entry may be what a crash
            # after the case's write left behind
            await store.follow(rt.db, doc)
            return store.strip(doc)
        entries = [rt.outbox.entry(e, key=case_id) for e in plan.events]
        query = {"_id": case_id, "status": doc["status"], **plan.filter}
        try:
            after = await store.update(rt.db, query, rt.outbox.on_update(plan.update, entries))
        except (DuplicateKeyError, OperationFailure) as exc:
            # reopening while a newer open case holds the worker's key (FerretDB reports the
            # unique violation of an update as an InternalError, MongoDB as E11000)
            if not isinstance(exc, DuplicateKeyError) and "UNIQUE" not in str(exc):
                raise
            raise Conflict(doc["status"], OPEN_ELSEWHERE) from exc
        if after is not None:
            if entries:
                rt.relay.wake(case_id)
            return after
    current = await store.get_raw(rt.db, case_id)
    if current is None:
        raise NotFound(case_id)
    raise Conflict(current["status"], "the case changed meanwhile; read it again")


def case_change(
    cls: type[CaseChange], doc: Doc, *, status: str, actor: str, at: datetime, **kw: Any
) -> CaseChange:
    """A case event about doc, moving it to status."""
    kw.setdefault("agency_id", doc.get("agency_id"))
    return cls(case_id=doc["_id"], status=status, previous_status=doc["status"], actor=actor, at=at, **kw)


def transition_plan(
    doc: Doc,
    action: Action,
    *,
    actor: str,
    now: datetime,
    reason: str | None,
    event_cls: type[CaseChange],
    kind: str,
    set_: Doc | None = None,
    unset: Doc | None = None,
    filter_: Doc | None = None,
    event_kw: Doc | None = None,
    extra_events: list[Event] | None = None,
    timeline_extra: Doc | None = None,
) -> Plan:
    """The plan of a lifecycle transition, or Conflict when the table does not allow it."""
    current = doc["status"]
    new = domain.transition(current, action, triaged=bool(doc.get("triaged_at")))
    if new is None:
        raise Conflict(current, f"cannot {action.value} a case that is {current}")
    stamps = {domain.STAMP[new]: now} if new in domain.STAMP else {}
    upd: Doc = {"$set": {"status": new.value, "updated_at": now, **stamps, **(set_ or {})}}
    if unset:
        upd["$unset"] = unset
    tl = entry(
        at=now,
        kind=kind,
        by=actor,
        reason=reason,
        status=new.value,
        previous=current,
        **(timeline_extra or {}),
    )
    ev = case_change(event_cls, doc, status=new.value, actor=actor, at=now, reason=reason, **(event_kw or {}))
    return Plan(merge_updates(upd, _push_timeline(tl)), [ev, *(extra_events or [])], filter_ or {})


# --- incidents become cases -----------------------------------------------------------------------


async def on_incident(rt: Runtime, *, event_id: str, incident: IncidentAccepted) -> str | None:
    """Open a case for an accepted incident, or join the open case of the same worker and family, once.

    Returns the id of the case that holds the incident.
    """
    rules = domain.load_rules()
    group = domain.is_group(incident.category, incident.people_affected)
    case_id = case_id_for(incident.incident_id)
    key, join = domain.placement_key(
        worker_key=incident.worker_key,
        category=incident.category,
        country=incident.country,
        people_affected=incident.people_affected,
        case_id=case_id,
    )
    for _ in range(5):
        # Does a case hold this incident already (a redelivery), and is there an open case to
        # join (the worker's, of this family; or the country's evacuation)?
        found = await store.find_placement(rt.db, incident_id=incident.incident_id, open_key=join)
        held = [d for d in found if incident.incident_id in (d.get("incident_ids") or [])]
        if held:
            # again, in case a crash came between the writes
            await store.follow(rt.db, held[0])
            await _suggest_back(rt, incident)
            return str(held[0]["_id"])
        existing = next((d for d in found if join and d.get("open_key") == join), None)
        if existing is not None and join is not None:
            if await _join(rt, existing, event_id=event_id, incident=incident, key=join):
                return str(existing["_id"])
            continue  # the case was resolved or changed meanwhile: look again
        doc = _new_case(
            rt,
            case_id=case_id,
            event_id=event_id,
            incident=incident,
            group=group,
            keys=(key, join),
            rules=rules,
        )
        outcome = await store.insert_new(rt.db, doc)
        if outcome == "inserted":
            rt.relay.wake(case_id)
        if outcome in ("inserted", "exists"):
            await _suggest_back(rt, incident)
            return case_id
        # another replica opened this worker's case first: join it on the next round
    raise RuntimeError(f"could not place incident {incident.incident_id} after several attempts")


async def _suggest_back(rt: Runtime, incident: IncidentAccepted) -> None:
    """Show the cases of earlier same-name reports this one as a suggested link, once each.

    A name alone identifies nobody: the cases stay apart until a desk officer decides.
    """
    now = rt.clock.now()
    for earlier in incident.suggested_incident_ids:
        for case in await store.find(rt.db, {"incident_ids": earlier}, limit=5):
            await store.update(
                rt.db,
                {
                    "_id": case["_id"],
                    "suggested_incident_ids": {"$ne": incident.incident_id},
                    "rejected_suggestions": {"$ne": incident.incident_id},  # the desk said no
                },
                merge_updates(
                    {
                        "$addToSet": {"suggested_incident_ids": incident.incident_id},
                        "$set": {"updated_at": now},
                    },
                    _push_timeline(
                        entry(at=now, kind="link_suggested", by="system", incident_id=incident.incident_id)
                    ),
                ),
            )


def _new_case(
    rt: Runtime,
    *,
    case_id: str,
    event_id: str,
    incident: IncidentAccepted,
    group: bool,
    keys: tuple[str, str | None],
    rules: domain.DeskRules,
) -> Doc:
    now = rt.clock.now()
    # A report for many people (an evacuation) is not one unregistered worker: never non-procedural.
    non_procedural = incident.match.non_procedural and not group
    prio = domain.priority(
        severity=incident.severity,
        category=incident.category,
        non_procedural=non_procedural,
        people_affected=incident.people_affected,
    )
    queue = rules.queue_for(country=incident.country, category=incident.category)
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
        queue=queue,
        family=domain.family_of(incident.category).value,
    )
    doc = {
        "_id": case_id,
        **opened.model_dump(mode="python", exclude={"case_id", "incident_id"}),
        "kind": "protection",
        "open_key": keys[0],
        "join_key": keys[1],
        "region": region_of(incident.country).value,
        "incident_ids": [incident.incident_id],
        "suggested_incident_ids": list(incident.suggested_incident_ids),
        "worker_keys": [incident.worker_key],
        "worker_name": incident.worker_name,
        "status": CaseStatus.NEW.value,
        "assignee": None,
        "escalation_level": 0,
        "tags": [],
        "resolution": None,
        "due_at": rules.due_at(opened_at=now, severity=incident.severity),
        "updated_at": now,
        "mission_requests": {},
        "timeline": [
            entry(at=now, kind="opened", by="system", incident_id=incident.incident_id, event_id=event_id),
            *(
                entry(at=now, kind="link_suggested", by="system", incident_id=other)
                for other in incident.suggested_incident_ids
            ),
        ],
        "_applied": [event_id],
    }
    return rt.outbox.on_insert(doc, [rt.outbox.entry(opened, key=case_id)])


async def _join(rt: Runtime, case: Doc, *, event_id: str, incident: IncidentAccepted, key: str) -> bool:
    """Link an incident to an open case in one write; False if the case no longer holds the key."""
    now = rt.clock.now()
    prio = domain.priority(
        severity=incident.severity,
        category=incident.category,
        non_procedural=incident.match.non_procedural,
        people_affected=incident.people_affected,
    )
    merged = case_change(
        CaseMerged,
        case,
        status=case["status"],
        actor="system",
        at=now,
        incident_id=incident.incident_id,
        category=incident.category,
        severity=incident.severity,
        reason=(
            "another evacuation report in the same country"
            if incident.category == Category.EVACUATION
            else "another incident of the same worker and category family"
        ),
    )
    once_filter, once_update = applied_once(event_id)
    # The case takes the graver severity, the higher priority and the nearer deadline.
    severity = max(Severity(case["severity"]), incident.severity, key=lambda s: SEVERITY_RANK[s])
    due = domain.load_rules().due_at(opened_at=now, severity=incident.severity)
    upd = merge_updates(
        {
            "$set": {"updated_at": now, "severity": severity.value},
            "$max": {"priority": prio, "people_affected": incident.people_affected},
            "$min": {"due_at": due},
            "$addToSet": {"incident_ids": incident.incident_id},
        },
        once_update,
        _push_timeline(
            entry(
                at=now,
                kind="incident_linked",
                by="system",
                incident_id=incident.incident_id,
                category=incident.category.value,
                severity=incident.severity.value,
                event_id=event_id,
            )
        ),
    )
    query = {"_id": case["_id"], "open_key": key, "severity": case["severity"], **once_filter}
    after = await store.update(
        rt.db, query, rt.outbox.on_update(upd, [rt.outbox.entry(merged, key=case["_id"])])
    )
    if after is not None:
        rt.relay.wake(case["_id"])
        return True
    return False


NON_PROCEDURAL_TAG = "non-procedural"  # the default rule set's tag for an unregistered worker


def worker_matched_plan(doc: Doc, *, match: IncidentMatched, now: datetime, rekey: bool = True) -> Plan:
    """A case's worker matched after the report: worker, agency, province, no longer non-procedural.

    With `rekey`, an open case of one worker is re-keyed to the worker id, so the worker's later
    reports (matched at once, keyed by worker id) join it; the caller retries without when the
    worker already has an open case of that family (the desk merges the two).
    """
    worker_id = match.match.worker_id or ""
    agency_id = doc.get("agency_id") or match.agency_id
    reason = "the worker's departure record arrived after the report"
    set_: Doc = {
        "worker_id": worker_id,
        "non_procedural": False,
        "agency_id": agency_id,
        "home_province": match.home_province,
        "departure_id": match.departure_id,
        "worker_name": doc.get("worker_name") or match.worker_name,
        "updated_at": now,
    }
    join = doc.get("join_key")
    if rekey and join and doc.get("open_key") == join and worker_id:
        key = f"{worker_id}|{join.rsplit('|', 1)[1]}"
        set_.update(open_key=key, join_key=key)
    tl = entry(
        at=now,
        kind="worker_matched",
        by="system",
        reason=reason,
        incident_id=match.incident_id,
        worker_id=worker_id,
        method=match.match.method.value,
        agency_id=agency_id,
        home_province=match.home_province,
    )
    ev = case_change(
        CaseWorkerMatched,
        doc,
        status=doc["status"],
        actor="system",
        at=now,
        reason=reason,
        incident_id=match.incident_id,
        agency_id=agency_id,
        worker_id=worker_id,
        home_province=match.home_province,
        departure_id=match.departure_id,
    )
    # The worker is registered after all: the non-procedural tag (if a rule set it) no longer holds.
    update = merge_updates(
        {"$set": set_, "$addToSet": {"worker_keys": worker_id}, "$pull": {"tags": NON_PROCEDURAL_TAG}},
        _push_timeline(tl),
    )
    return Plan(update, [ev])


# --- desk actions -------------------------------------------------------------------------------


async def claim_next(rt: Runtime, *, queue: str, officer: str) -> Doc | None:
    """Give the head of a queue to an officer, atomically; expired claims are released first.

    The claim is one find_one_and_update with the queue's sort, so two officers never get the
    same case. Its event cannot ride that same write (the case id is known only after it), so
    the write leaves a `_claim_pending` marker that a second write (or, after a crash, the
    sweeper) turns into the CaseClaimed outbox entry, with an id derived from the claim.
    """
    rules = domain.load_rules()
    await release_expired(rt, queue=queue)
    now = rt.clock.now()
    query = {"queue": queue, "status": {"$in": [s.value for s in domain.WAITING]}}
    upd = merge_updates(
        {
            "$set": {
                "status": CaseStatus.ASSIGNED.value,
                "assignee": officer,
                "assigned_at": now,
                "updated_at": now,
                "lease_until": now + rules.claim_lease,
                PENDING_CLAIM: {"actor": officer, "at": now},
            }
        },
        _push_timeline(
            entry(at=now, kind="claimed", by=officer, reason=f"claimed from queue {queue}", status="assigned")
        ),
    )
    before = await store.claim_head(rt.db, query, upd)
    if before is None:
        return None
    metrics.of(rt).claims.labels(queue, "next").inc()
    return await finish_claim(rt, before["_id"], previous_status=before["status"])


PENDING_CLAIM = "_claim_pending"


async def finish_claim(rt: Runtime, case_id: str, *, previous_status: str | None = None) -> Doc:
    """Turn a claim's pending marker into its CaseClaimed outbox entry, once."""
    doc = await store.get_raw(rt.db, case_id)
    if doc is None:
        raise NotFound(case_id)
    pending = doc.get(PENDING_CLAIM)
    if not pending:
        return store.strip(doc)
    at = pending["at"]
    ev = CaseClaimed(
        case_id=case_id,
        status=CaseStatus.ASSIGNED,
        previous_status=previous_status,
        actor=pending["actor"],
        assignee=pending["actor"],
        reason="claimed from queue",
        at=at,
    )
    event_id = uuid.uuid5(CASE_NS, f"{case_id}:claimed:{at.isoformat()}").hex
    after = await store.update(
        rt.db,
        {"_id": case_id, f"{PENDING_CLAIM}.at": at},
        rt.outbox.on_update({"$unset": {PENDING_CLAIM: ""}}, [rt.outbox.entry(ev, key=case_id, id=event_id)]),
    )
    rt.relay.wake(case_id)
    return after if after is not None else store.strip(doc)


async def finish_pending_claims(rt: Runtime) -> int:
    """Complete claims whose event a crashed replica did not store (sweeper)."""
    n = 0
    for c in await store.with_field(rt.db, PENDING_CLAIM):
        await finish_claim(rt, c["_id"])
        n += 1
    return n


async def release_expired(rt: Runtime, *, queue: str | None = None) -> int:
    """Return every claim whose lease ran out (by the injected clock) to its queue; how many."""
    now = rt.clock.now()
    released = 0
    for c in await store.expired_claims(rt.db, now, queue=queue):

        def build(doc: Doc) -> Plan | None:
            if (
                doc["status"] != CaseStatus.ASSIGNED
                or doc.get("lease_until") is None
                or doc["lease_until"] >= now
            ):
                return None  # acknowledged or released meanwhile
            return transition_plan(
                doc,
                Action.RELEASE,
                actor="system",
                now=now,
                reason=f"claim by {doc.get('assignee')} not acknowledged within its lease",
                event_cls=CaseReleased,
                kind="released",
                set_={"assignee": None},
                unset={"lease_until": ""},
                filter_={"assignee": doc.get("assignee"), "lease_until": {"$lt": now}},
                event_kw={"assignee": doc.get("assignee")},
            )

        try:
            after = await change(rt, c["_id"], build)
        except (Conflict, NotFound):
            continue  # someone else released or acknowledged it
        if after.get("status") != CaseStatus.ASSIGNED:
            released += 1
            metrics.of(rt).lease_expiries.labels(str(after.get("queue", "?"))).inc()
    return released


def count_claim(rt: Runtime, case: Doc) -> None:
    """A desk officer claimed a case directly (not through claim-next)."""
    metrics.of(rt).claims.labels(str(case.get("queue", "?")), "direct").inc()


def desk_plan(
    doc: Doc,
    action: Action,
    *,
    actor: str,
    roles: frozenset[str],
    now: datetime,
    reason: str | None = None,
    resolution: str | None = None,
    assignee: str | None = None,
) -> Plan:
    """The plan of a desk user's lifecycle action (triage, claim, acknowledge, release, ...)."""
    if not domain.allowed(action, roles):
        raise Forbidden(
            f"{action.value} requires one of the roles: {', '.join(sorted(domain.ROLES[action]))}"
        )
    supervisor = "supervisor" in roles
    rules = domain.load_rules()
    if domain.transition(doc["status"], action) is None:  # the state first: 409 before who may
        raise Conflict(doc["status"], f"cannot {action.value} a case that is {doc['status']}")
    match action:
        case Action.TRIAGE:
            return transition_plan(
                doc, action, actor=actor, now=now, reason=reason, event_cls=CaseTriaged, kind="triaged"
            )
        case Action.CLAIM:
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseClaimed,
                kind="claimed",
                set_={"assignee": actor, "lease_until": now + rules.claim_lease},
                event_kw={"assignee": actor},
            )
        case Action.ACKNOWLEDGE:
            if doc.get("assignee") != actor:
                raise Forbidden("only the officer holding the claim acknowledges it")
            lease = doc.get("lease_until")
            if lease is not None and lease < now and doc["status"] == CaseStatus.ASSIGNED:
                raise Conflict(doc["status"], "the claim's lease has expired; claim the case again")
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseAcknowledged,
                kind="acknowledged",
                unset={"lease_until": ""},
                filter_={"assignee": actor},
                # the severity lets escalation start the resolve deadline of that severity
                event_kw={"assignee": actor, "severity": doc.get("severity")},
            )
        case Action.RELEASE:
            if doc.get("assignee") != actor and not supervisor:
                raise Forbidden("only the officer holding the claim, or a supervisor, releases it")
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseReleased,
                kind="released",
                set_={"assignee": None},
                unset={"lease_until": ""},
                event_kw={"assignee": doc.get("assignee")},
            )
        case Action.REASSIGN:
            plan = transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseClaimed,
                kind="reassigned",
                set_={"assignee": assignee, "lease_until": now + rules.claim_lease},
                filter_={"assignee": doc.get("assignee")},
                event_kw={"assignee": assignee},
                timeline_extra={"assignee": assignee, "previous_assignee": doc.get("assignee")},
            )
            if doc.get("assignee"):  # the previous officer hears they no longer hold it
                released = case_change(
                    CaseReleased,
                    doc,
                    status=CaseStatus.ASSIGNED,
                    actor=actor,
                    at=now,
                    reason=reason,
                    assignee=doc["assignee"],
                )
                plan.events.insert(0, released)
            return plan
        case Action.AWAIT_REPATRIATION:
            _holder_or_supervisor(doc, actor, supervisor)
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseAwaitingRepatriation,
                kind="awaiting_repatriation",
            )
        case Action.RESOLVE:
            _holder_or_supervisor(doc, actor, supervisor)
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseResolved,
                kind="resolved",
                set_={"resolution": resolution, "open_key": domain.closed_key(doc["_id"])},
                timeline_extra={"resolution": resolution},
            )
        case Action.CLOSE:
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseClosed,
                kind="closed",
                set_={"open_key": domain.closed_key(doc["_id"])},
            )
        case Action.REOPEN:
            if doc.get("merged_into"):
                raise Conflict(doc["status"], f"merged into {doc['merged_into']}: undo the merge instead")
            key = doc.get("join_key") or doc["open_key"]
            return transition_plan(
                doc,
                action,
                actor=actor,
                now=now,
                reason=reason,
                event_cls=CaseReopened,
                kind="reopened",
                set_={"open_key": key, "assignee": None, "resolution": None, "reopened_at": now},
                unset={"lease_until": ""},
            )
        case _:
            raise Conflict(doc["status"], f"{action.value} is not a desk action")


def _holder_or_supervisor(doc: Doc, actor: str, supervisor: bool) -> None:
    if not supervisor and doc.get("assignee") != actor:
        raise Forbidden("only the officer working the case, or a supervisor, does this")


def note_plan(doc: Doc, *, actor: str, now: datetime, text: str) -> Plan:
    """An internal note on the timeline (never shown to missions)."""
    return Plan(
        merge_updates(
            {"$set": {"updated_at": now}},
            _push_timeline(entry(at=now, kind="note", by=actor, reason=text, internal=True)),
        )
    )


def priority_plan(doc: Doc, *, actor: str, now: datetime, priority: int, reason: str) -> Plan:
    """A supervisor's change of priority, with the reason."""
    if not domain.is_open(doc["status"]):
        raise Conflict(doc["status"], "the priority of a finished case does not change")
    ev = case_change(
        CasePriorityChanged, doc, status=doc["status"], actor=actor, at=now, reason=reason, priority=priority
    )
    tl = entry(
        at=now,
        kind="priority_changed",
        by=actor,
        reason=reason,
        priority=priority,
        previous_priority=doc.get("priority"),
    )
    return Plan(merge_updates({"$set": {"priority": priority, "updated_at": now}}, _push_timeline(tl)), [ev])


def escalate_plan(doc: Doc, *, actor: str, now: datetime, level: int | None, reason: str) -> Plan | None:
    """Raise the escalation level (never lower it); None when already at or above."""
    current = int(doc.get("escalation_level") or 0)
    new = domain.escalation_level(current, level)
    if new == current:
        return None
    ev = case_change(CaseEscalated, doc, status=doc["status"], actor=actor, at=now, reason=reason, level=new)
    tl = entry(at=now, kind="escalated", by=actor, reason=reason, level=new, previous_level=current)
    return Plan(
        merge_updates(
            {"$set": {"escalation_level": new, "escalated_at": now, "updated_at": now}}, _push_timeline(tl)
        ),
        [ev],
        # the stored value as read (None matches a case written before levels existed)
        {"escalation_level": doc.get("escalation_level")},
    )


def tag_plan(doc: Doc, *, actor: str, now: datetime, tag: str, reason: str | None) -> Plan:
    """Add a tag (once), with a timeline entry."""
    return Plan(
        merge_updates(
            {"$set": {"updated_at": now}, "$addToSet": {"tags": tag}},
            _push_timeline(entry(at=now, kind="tagged", by=actor, reason=reason, tag=tag)),
        )
    )


@dataclass
class CaseRetention:
    """What one retention run did in casework."""

    cutoff: datetime
    cases: int = 0

    def __str__(self) -> str:
        return f"retention: anonymised {self.cases} cases closed before {self.cutoff.isoformat()}"


async def anonymise_closed(rt: Runtime, *, older_than: timedelta, limit: int = 1000) -> CaseRetention:
    """Anonymise cases closed more than `older_than` ago (a case reopened meanwhile is left alone)."""
    now = rt.clock.now()
    report = CaseRetention(cutoff=now - older_than)
    for case in await store.closed_before(rt.db, report.cutoff, limit):
        # intake forgets the reports when it hears of it (the narrative, the worker's identifiers)
        event = CaseAnonymised(
            case_id=case["_id"], incident_ids=case.get("incident_ids") or [], anonymised_at=now
        )
        update = rt.outbox.on_update(
            {"$set": domain.anonymised(case, now)}, [rt.outbox.entry(event, key=case["_id"])]
        )
        if await store.anonymise(rt.db, case, update):
            report.cases += 1
            rt.relay.wake(case["_id"])
    return report
