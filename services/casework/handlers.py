"""casework's Kafka side: accepted incidents become cases; escalation and repatriation reach the timeline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.casework import changes, claims, desk, domain, opening, placement, store
from services.casework.changes import CaseUpdate, entry, push_timeline
from services.casework.domain import Action
from shared.envelope import EVENT_TYPES, Envelope, Event
from shared.errors import Conflict, PermanentError
from shared.events.casework import CaseAwaitingRepatriation, CaseStatus
from shared.events.escalation import (
    ActionKind,
    EscalationAction,
    EscalationWithdrawn,
    NotificationDelivery,
)
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.events.repatriation import StepChanged, WorkflowChanged
from shared.kafka import BatchHandler, Handler
from shared.mongo import Doc, applied_once, merge_updates
from shared.service import Runtime
from shared.topics import CASES

log = logging.getLogger("lindungi.casework")

RETRIES = 5  # a handler re-reads when a desk action moved the case between its read and write


def _once(env: Envelope, case_update: CaseUpdate | None) -> CaseUpdate | None:
    """Add the applied-once guard of an event to a case update; its timeline entries name the event."""
    if case_update is None:
        return None
    for item in case_update.update.get("$push", {}).get("timeline", {}).get("$each", []):
        item.setdefault("event_id", env.id)
    once_filter, once_update = applied_once(env.id)
    return CaseUpdate(
        merge_updates(case_update.update, once_update),
        case_update.events,
        {**case_update.filter, **once_filter},
    )


def _timeline_only(now: datetime, kind: str, by: str, reason: str | None, **extra: object) -> CaseUpdate:
    return CaseUpdate(
        merge_updates(
            {"$set": {"updated_at": now}},
            push_timeline(entry(at=now, kind=kind, by=by, reason=reason, **extra)),
        )
    )


def incident_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """INCIDENTS: accepted incidents become cases; a worker matched late reaches the case."""

    async def on_incident_accepted(env: Envelope, incident: IncidentAccepted) -> None:
        """Open a case for the incident, or join the worker's open case of the same family, once."""
        await placement.on_incident(rt, event_id=env.id, incident=incident)

    async def on_incident_matched(env: Envelope, matched: IncidentMatched) -> None:
        """The worker of a case was matched late: the case takes the match and says so, once."""
        held = placement.live_holder(await placement.cases_holding(rt, [matched.incident_id]))
        if held is None:
            # the same partition carried the IncidentAccepted first: its case must exist
            raise RuntimeError(f"no case holds incident {matched.incident_id} yet")
        now = rt.clock.now()

        def build(doc: Doc, rekey: bool = True) -> CaseUpdate | None:
            return placement.worker_matched_update(doc, match=matched, now=now, rekey=rekey)

        try:
            await _apply_once(rt, env, str(held["_id"]), build)
        except Conflict:
            # the worker already has an open case of this family: keep the keys, the desk merges
            await _apply_once(rt, env, str(held["_id"]), lambda doc: build(doc, rekey=False))

    return {IncidentAccepted: on_incident_accepted, IncidentMatched: on_incident_matched}


def escalation_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """ESCALATIONS: a rule's actions on a case (or a new investigation), notifications, withdrawals.

    Longer than most: the three handlers of the topic live together, and the action handler's
    match is one table of what each kind of action writes."""

    async def on_action(env: Envelope, action: EscalationAction) -> None:
        """Apply a rule's action to its case, once."""
        if action.kind == ActionKind.OPEN_CASE:
            await opening.open_investigation(rt, event_id=env.id, action=action)
            return
        if action.case_id is None:
            return  # not about a case (e.g. an agency flag): nothing on the desk
        now = rt.clock.now()
        by = f"rule:{action.rule_id}"

        def build(doc: Doc) -> CaseUpdate | None:
            match action.kind:
                case ActionKind.ESCALATE:
                    case_update = desk.escalate_update(
                        doc, actor=by, now=now, level=action.level, reason=action.reason
                    )
                    if case_update is None:  # already at that level: still on the timeline
                        case_update = _timeline_only(
                            now, "escalation_unchanged", by, action.reason, level=action.level
                        )
                case ActionKind.TAG if action.tag == placement.NON_PROCEDURAL_TAG and doc.get("worker_id"):
                    # the worker was matched (late) before the tag arrived: it no longer holds
                    case_update = _timeline_only(
                        now, "tag_not_applied", by, "the worker was matched", tag=action.tag
                    )
                case ActionKind.TAG:
                    case_update = desk.tag_update(
                        doc, actor=by, now=now, tag=action.tag or "untagged", reason=action.reason
                    )
                case ActionKind.NOTIFY:
                    case_update = _timeline_only(now, "notified", by, action.reason, notify=action.notify)
                case ActionKind.REFER:
                    case_update = _timeline_only(now, "referred", by, action.reason, partner=action.partner)
                case _:
                    return None
            return case_update

        await _apply_once(rt, env, action.case_id, build)

    async def on_notification(env: Envelope, delivery: NotificationDelivery) -> None:
        """A notification was sent, or failed after its tries: on the timeline, once."""
        await _on_timeline(
            rt,
            env,
            delivery.case_id,
            f"notification_{delivery.status.value}",
            f"rule:{delivery.rule_id}",
            delivery.error,
            notification_id=delivery.notification_id,
            action=delivery.kind.value,
            to=delivery.to,
            contact=delivery.contact,
            channel=delivery.channel,
            attempts=delivery.attempts,
        )

    async def on_withdrawn(env: Envelope, withdrawn: EscalationWithdrawn) -> None:
        """A deadline met after all: what escalation undid and what stands, on the timeline, once."""
        await _on_timeline(
            rt,
            env,
            withdrawn.case_id,
            "escalation_withdrawn",
            f"rule:{withdrawn.rule_id}",
            f"the deadline was met at {withdrawn.met_at.isoformat()}; the ending event came late",
            stages=withdrawn.stages,
            undone=withdrawn.undone,
            not_undone=withdrawn.not_undone,
        )

    return {
        EscalationAction: on_action,
        NotificationDelivery: on_notification,
        EscalationWithdrawn: on_withdrawn,
    }


def repatriation_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """REPATRIATIONS: workflows and steps on the case's timeline; a started one awaits repatriation."""

    async def on_workflow(env: Envelope, wf: WorkflowChanged) -> None:
        """A repatriation started, completed, was cancelled or rerouted: on the timeline, once."""
        if wf.case_id is None:
            return
        now = rt.clock.now()

        def build(doc: Doc) -> CaseUpdate | None:
            extra = {"repatriation_id": wf.repatriation_id, "repatriation_kind": wf.kind.value}
            kind = f"repatriation_{wf.status}"
            # A started repatriation puts a worked case in awaiting_repatriation; anything else
            # (or a case in another state) only shows on the timeline.
            if wf.status == "started" and domain.transition(doc["status"], Action.AWAIT_REPATRIATION):
                case_update = changes.transition_update(
                    doc,
                    Action.AWAIT_REPATRIATION,
                    actor=wf.actor,
                    now=now,
                    reason=wf.reason or "repatriation started",
                    event_cls=CaseAwaitingRepatriation,
                    kind=kind,
                    timeline_extra=extra,
                )
            else:
                case_update = _timeline_only(now, kind, wf.actor, wf.reason, **extra)
            return case_update

        await _apply_once(rt, env, wf.case_id, build)

    async def on_step(env: Envelope, step: StepChanged) -> None:
        """A repatriation step changed: on the timeline, once."""
        if step.case_id is None:
            return
        await _on_timeline(
            rt,
            env,
            step.case_id,
            "repatriation_step",
            step.actor,
            step.reason,
            repatriation_id=step.repatriation_id,
            step=step.step,
            step_status=step.status,
            owner=step.owner,
            due_at=step.due_at,
        )

    return {WorkflowChanged: on_workflow, StepChanged: on_step}


async def _apply_once(
    rt: Runtime, env: Envelope, case_id: str, build: Callable[[Doc], CaseUpdate | None]
) -> None:
    """Apply build's update to a case once per event (re-read when a desk action moved the case
    meanwhile); a case that does not exist is a permanent error."""

    def guarded(doc: Doc) -> CaseUpdate | None:
        if env.id in (doc.get("_applied") or []):
            return None
        return _once(env, build(doc))

    try:
        await changes.change(rt, case_id, guarded, retries=RETRIES)
    except changes.NotFound as exc:
        raise PermanentError(f"no case {case_id}") from exc


async def _on_timeline(
    rt: Runtime, env: Envelope, case_id: str, kind: str, by: str, reason: str | None, **extra: object
) -> None:
    """Only an entry on the case's timeline, once per event."""
    now = rt.clock.now()
    await _apply_once(rt, env, case_id, lambda doc: _timeline_only(now, kind, by, reason, **extra))


# --- the waiting cases' read model (store.WAITING), kept from casework's own case events ---------------

FOLLOW_TRIES = 10  # a case that changes this often while its entry is written: the handler retries


def case_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """CASES, casework's own events (consumer group `casework.casework.cases.v1`, beside escalation's and
    repatriation's): every one brings its case's queue entry up to the case."""

    async def on_case(env: Envelope, event: Event) -> None:
        """Follow the case the event is about (read from the cases: the event is only the cue)."""
        await follow_cases(rt, [_case_named(env, event)])

    return {cls: on_case for cls in EVENT_TYPES.values() if cls.topic == CASES}


def follow_batch(rt: Runtime) -> BatchHandler:
    """The case events as the broker hands them over, many at a time: each case they name is
    followed once, all of them together (follow_cases); an event that names no case is left to
    its own handler (case_handlers), which sends it to the dead-letter topic."""

    async def on_cases(events: list[tuple[Envelope, Event]]) -> None:
        await follow_cases(rt, [_case_named(env, event) for env, event in events])

    return on_cases


def _case_named(env: Envelope, event: Event) -> str:
    case_id = getattr(event, "case_id", None)
    if not isinstance(case_id, str):
        raise PermanentError(f"{env.type} names no case")
    return case_id


async def follow_case(rt: Runtime, case_id: str) -> None:
    """follow_cases for one case."""
    await follow_cases(rt, [case_id])


async def follow_cases(rt: Runtime, case_ids: list[str]) -> None:
    """Bring the cases' `waiting` entries to the cases as stored now (in while a case waits, out
    once not), and their load entries (store.LOADS: in while an officer works the case, out once
    not), then move the change stamps of the queues they are or were in (store.STAMPS), which
    casework's queue reads are cached by. A few round trips for any number of cases
    (store.keep_loads, store.keep_waiting), each case once however many of its events came.

    Cases are read by `_id`, never taken from the events, so a redelivered or overtaken event
    cannot bring back a case that left its queue, and a recategorised case moves with its entry.
    Writes are guarded by each case's change count (an entry in only over an older one, a removal
    only of an entry no newer than the read). One race is left, because a removal leaves no count
    behind: a replica that read a case while it waited may write its entry back just after
    another one, having read it claimed, removed it. So after writing entries in, the cases are
    read again and each that moved meanwhile is followed again.
    """
    pending = list(dict.fromkeys(case_ids))
    for _ in range(FOLLOW_TRIES):
        cases = await store.entry_sources(rt.db, pending) if pending else []
        if not cases:
            return  # nothing waits that does not exist
        # The officers' loads first: a reader who sees the queue change sees the claim's load too.
        loaded = await store.keep_loads(rt.db, cases)
        held = await store.keep_waiting(rt.db, cases, rt.clock.now())
        read = {c["_id"]: c for c in cases}
        # written in from a read that its officer or status may have left since
        worked = [c["_id"] for c in cases if c["_id"] in loaded and c.get("status") not in domain.WAITING]
        if not held and not worked:
            return
        now = {c["_id"]: c for c in await store.entry_sources(rt.db, held + worked)}
        pending = [
            cid for cid in held if cid not in now or store.version_of(now[cid]) != store.version_of(read[cid])
        ]
        pending += [cid for cid in worked if not store.same_load(read[cid], now.get(cid))]
    raise RuntimeError(f"cases {pending} kept changing while their queue entries were written")


async def fill_loads(rt: Runtime) -> None:
    """At start: no load entries beside worked cases (a database from before them, or cases stored
    in bulk): filled from the cases, as fill_waiting fills the waiting entries."""
    if await store.any_load_entry(rt.db):
        return
    await _fill(rt, domain.WORKED, lambda cases: store.keep_loads(rt.db, cases), "load entries")


async def fill_notes(rt: Runtime) -> None:
    """At start, once per database: note the joins (store.PLACED) and the holders (store.HOLDERS)
    of a database from before them (every case's incidents other than the one that opened it), so
    that a report redelivered or replayed later finds its case by `_id` (store.find_placement) and
    the case list by incident reads its cases by `_id`. Then the markers: later starts skip it.

    Safe beside replicas and consumers: notes are idempotent, and a join or a merge made meanwhile
    notes itself first.
    """
    placed, held = await store.placed_complete(rt.db), await store.holders_complete(rt.db)
    if placed and held:
        return
    for case in await store.incidents_held(rt.db):
        for incident_id in case.get("incident_ids") or []:
            if changes.case_id_for(incident_id) != case["_id"]:
                if placed:
                    await store.note_holders(rt.db, [incident_id], case["_id"])
                else:
                    await store.note_join(rt.db, incident_id, case["_id"])  # its holder too
    if not placed:
        await store.mark_placed_complete(rt.db)
    await store.mark_holders_complete(rt.db)


async def fill_waiting(rt: Runtime) -> None:
    """At start: an empty `waiting` beside waiting cases (a database from before the read model,
    or cases stored in bulk) is filled from the cases.

    Idempotent and safe beside replicas that follow events meanwhile: each entry is written with
    the same guard as an event's, and a case whose count moved between the read and a second
    read after the writes is followed one by one, as its event would be.
    """
    if await store.any_waiting_entry(rt.db):
        return

    await _fill(
        rt, domain.WAITING, lambda cases: store.keep_waiting(rt.db, cases, rt.clock.now()), "queue entries"
    )


async def _fill(
    rt: Runtime, statuses: frozenset[CaseStatus], write: Callable[[list[Doc]], Awaitable[object]], what: str
) -> None:
    """Write the entries of every case in these statuses (`write`, guarded per entry), then read
    the cases again and follow, as their events would be, the cases that moved meanwhile."""
    names = sorted(s.value for s in statuses)
    cases = await store.cases_in(rt.db, names)
    if not cases:
        return
    await write(cases)
    now = {c["_id"]: store.version_of(c) for c in await store.cases_in(rt.db, names)}
    moved = [c["_id"] for c in cases if now.get(c["_id"]) != store.version_of(c)]
    await follow_cases(rt, moved)
    log.info("%s filled from %d cases (%d moved meanwhile)", what, len(cases), len(moved))


async def sweep_forever(rt: Runtime, *, every_seconds: float = 5.0) -> None:
    """Release expired claims and finish pending claim events; safe on every replica (conditional writes)."""
    while True:
        try:
            await claims.release_expired(rt)
            await claims.finish_pending_claims(rt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("casework sweep failed; retrying")
        await asyncio.sleep(every_seconds)
