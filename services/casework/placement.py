"""Incidents become cases: an accepted incident opens a case or joins the worker's open case of
its family (or its country's evacuation), once; a worker matched late re-keys the case."""

from __future__ import annotations

from datetime import datetime

from services.casework import domain, opening, queues, store
from services.casework.changes import CaseUpdate, case_change, case_id_for, entry, push_timeline
from shared.events.casework import CaseMerged, CaseWorkerMatched
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.mongo import Doc, applied_once, merge_updates
from shared.service import Runtime
from shared.vocab import SEVERITY_RANK, Category, Severity


async def on_incident(rt: Runtime, *, event_id: str, incident: IncidentAccepted) -> str | None:
    """Open a case for an accepted incident, or join the open case of the same worker and family, once.

    Returns the id of the case that holds the incident.
    """
    group = domain.is_group(incident.category, incident.people_affected)
    case_id = case_id_for(incident.incident_id)
    key, join = domain.placement_key(
        worker_key=incident.worker_key,
        category=incident.category,
        country=incident.country,
        people_affected=incident.people_affected,
        case_id=case_id,
    )
    if await _may_open_at_once(rt, incident):
        if await _open(
            rt, case_id=case_id, event_id=event_id, incident=incident, group=group, keys=(key, join)
        ):
            return case_id
    for _ in range(5):
        # Does a case hold this incident already (a redelivery), and is there an open case to
        # join (the worker's, of this family; or the country's evacuation)?
        found = await store.find_placement(
            rt.db, incident_id=incident.incident_id, case_id=case_id, open_key=join
        )
        held = [d for d in found if incident.incident_id in (d.get("incident_ids") or [])]
        if held:
            # again, in case a crash came between the writes
            await _suggestions(rt, incident, held[0]["_id"], own=True)
            return str(held[0]["_id"])
        existing = next((d for d in found if join and d.get("open_key") == join), None)
        if (
            existing is None
            and join is not None
            and join == domain.open_key(incident.worker_key, incident.category)
        ):
            existing = await _linked_case(rt, incident, family=domain.family_of(incident.category).value)
        if existing is not None and join is not None:
            if await _join(rt, existing, event_id=event_id, incident=incident, key=existing["open_key"]):
                await _suggestions(rt, incident, existing["_id"], own=True)
                return str(existing["_id"])
            continue  # the case was resolved or changed meanwhile: look again
        if await _open(
            rt,
            case_id=case_id,
            event_id=event_id,
            incident=incident,
            group=group,
            keys=(key, join),
            exists=True,
        ):
            return case_id
        # another replica opened this worker's case first: join it on the next round
    raise RuntimeError(f"could not place incident {incident.incident_id} after several attempts")


async def _may_open_at_once(rt: Runtime, incident: IncidentAccepted) -> bool:
    """Whether the report may open its case in one write, reading no case first: the common first
    delivery, a report that joined no case and links no earlier report.

    The unique `_id` and `open_key` decide what reads would have: the write is refused when the
    case exists (a redelivery of the report that opened it, or absorbed since by a merge) or an
    open case holds the worker's family key (the report joins it), and the caller looks as on any
    retry. A report noted joining a case (PLACED) always looks: its own case may never exist, and
    opening it would hold the report twice. An evacuation report looks first too: after the first
    one, every report of the country joins its open case, and a refused write would only add
    round trips to each.
    """
    if incident.category == Category.EVACUATION or incident.linked_incident_ids:
        return False
    return not await store.noted_join(rt.db, incident.incident_id)


async def _open(
    rt: Runtime,
    *,
    case_id: str,
    event_id: str,
    incident: IncidentAccepted,
    group: bool,
    keys: tuple[str, str | None],
    exists: bool = False,
) -> bool:
    """Write the incident's own case; True if it holds the incident now (inserted, or, with
    `exists`, written before under this id), and then its same-name suggestions are shown."""
    doc = opening.protection_case(
        rt, case_id=case_id, event_id=event_id, incident=incident, group=group, keys=keys
    )
    outcome = await store.insert_new(rt.db, doc)
    if outcome == "inserted":
        rt.relay.wake(case_id)
    if outcome == "inserted" or (exists and outcome == "exists"):
        await _suggestions(rt, incident, case_id, own=False)  # its own: in the opening write
        return True
    return False


async def _linked_case(rt: Runtime, incident: IncidentAccepted, *, family: str) -> Doc | None:
    """The open case, of this family, of an earlier report intake linked to this one (same worker
    by NIK, passport, name with birth date or registry match, same category, within the window).

    Its key may differ from this report's: the earlier report was keyed by a hash before its
    worker was matched late, and casework may not have re-keyed its case yet (the match travels
    on the old key's partition). Joining by the link does not wait for that.
    """
    if not incident.linked_incident_ids or incident.worker_key.startswith("group-"):
        return None
    for case in await cases_holding(rt, incident.linked_incident_ids[:10]):
        key = case.get("open_key") or ""
        if (
            domain.is_open(case["status"])
            and not case.get("group")
            and case.get("join_key") == key
            and key.endswith(f"|{family}")
        ):
            return case
    return None


async def _suggestions(rt: Runtime, incident: IncidentAccepted, case_id: str, *, own: bool) -> None:
    """Same-name suggestions both ways, once the case holding this incident is written.

    A name alone identifies nobody: the cases stay apart until a desk officer decides. Intake
    names the earlier same-name reports in the later one; casework shows each side the other:
    the earlier report's case gets the later incident (`_suggest_back`), and the case holding
    this report gets its own suggestions (`own`: when it joined a case; an opened case has them
    from its first write) and those of later reports placed before it (`waiting_suggestions`).
    """
    now = rt.clock.now()
    await _suggest_back(rt, incident, now)
    named = list(incident.suggested_incident_ids) if own else []
    waiting = await store.waiting_suggestions(rt.db, incident.incident_id)
    for other in [*named, *waiting]:
        await _suggest(rt, case_id, other, now)
    if waiting:
        await store.clear_waiting_suggestions(rt.db, incident.incident_id)


async def _suggest_back(rt: Runtime, incident: IncidentAccepted, now: datetime) -> None:
    """Show the cases of earlier same-name reports this one as a suggested link, once each.

    The earlier report travels on its own worker's key, so on another partition: casework may
    place this one first. Then the suggestion waits under the earlier incident's id for its case
    (`_suggestions` there takes it), and the case is looked for once more. Each side writes
    before it looks (this one the waiting suggestion, the earlier one its case), so at least
    one of them sees the other; a suggestion shown twice is one (`_suggest` adds it once).
    """
    earlier = list(incident.suggested_incident_ids)
    if not earlier:
        return
    # The same reads for all the earlier reports, rather than one a report.
    cases = await cases_holding(rt, earlier)
    missing = [e for e in earlier if not any(e in (c.get("incident_ids") or []) for c in cases)]
    if missing:
        for e in missing:
            await store.wait_suggestion(rt.db, earlier=e, later=incident.incident_id)
        cases += await cases_holding(rt, missing)
    for case in {c["_id"]: c for c in cases}.values():
        if not _knows(case, incident.incident_id):
            await _suggest(rt, case["_id"], incident.incident_id, now)


async def cases_holding(rt: Runtime, incident_ids: list[str]) -> list[Doc]:
    """The cases holding any of these incidents, oldest first, read by `_id` (store.cases_holding)."""
    return await store.cases_holding(rt.db, {i: case_id_for(i) for i in incident_ids})


def live_holder(held: list[Doc], *, besides: str | None = None) -> Doc | None:
    """Of the cases holding an incident (cases_holding), the one its news belongs to: after a merge
    the survivor, not the absorbed case that still lists it (closed, `merged_into`); after a chain
    of merges the last survivor. Oldest first among equals; `besides` excluded when another holds it.
    """
    others = [doc for doc in held if doc["_id"] != besides] or held
    return min(others, key=lambda doc: bool(doc.get("merged_into")), default=None)


def _knows(case: Doc, incident_id: str) -> bool:
    """The case read already holds, suggests or refused the incident: `_suggest` would change
    nothing (each of the three only grows), so its write can be spared."""
    return any(
        incident_id in (case.get(f) or [])
        for f in ("incident_ids", "suggested_incident_ids", "rejected_suggestions")
    )


async def _suggest(rt: Runtime, case_id: str, incident_id: str, now: datetime) -> None:
    """Suggest an incident to a case, once, unless the case holds it or the desk said no."""
    await store.update(
        rt.db,
        {
            "_id": case_id,
            "incident_ids": {"$ne": incident_id},
            "suggested_incident_ids": {"$ne": incident_id},
            "rejected_suggestions": {"$ne": incident_id},  # the desk said no
        },
        merge_updates(
            {"$addToSet": {"suggested_incident_ids": incident_id}, "$set": {"updated_at": now}},
            push_timeline(entry(at=now, kind="link_suggested", by="system", incident_id=incident_id)),
        ),
    )


async def _join(rt: Runtime, case: Doc, *, event_id: str, incident: IncidentAccepted, key: str) -> bool:
    """Link an incident to an open case in one write; False if the case no longer holds the key.

    The case is noted as the incident's first (store.note_join), so that a redelivered report
    finds where it went by `_id`, even once the case is closed."""
    await store.note_join(rt.db, incident.incident_id, case["_id"])
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
    due = queues.load_queues().due_at(opened_at=now, severity=incident.severity)
    upd = merge_updates(
        {
            "$set": {"updated_at": now, "severity": severity.value},
            "$max": {"priority": prio, "people_affected": incident.people_affected},
            "$min": {"due_at": due},
            "$addToSet": {"incident_ids": incident.incident_id},
        },
        once_update,
        push_timeline(
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


def worker_matched_update(
    doc: Doc, *, match: IncidentMatched, now: datetime, rekey: bool = True
) -> CaseUpdate:
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
        actor="system",
        at=now,
        reason=reason,
        incident_id=match.incident_id,
        agency_id=agency_id,
        worker_id=worker_id,
        home_province=match.home_province,
        departure_id=match.departure_id,
        category=doc.get("category"),
    )
    # The worker is registered after all: the non-procedural tag (if a rule set it) no longer holds.
    update = merge_updates(
        {"$set": set_, "$addToSet": {"worker_keys": worker_id}, "$pull": {"tags": NON_PROCEDURAL_TAG}},
        push_timeline(tl),
    )
    return CaseUpdate(update, [ev])
