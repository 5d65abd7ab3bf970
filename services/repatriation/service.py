"""repatriation's service functions: load, decide (commands), store with the outbox, in one write."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from services.repatriation import commands, plans, store
from services.repatriation.evacuees import ACCOUNTED_FOR, EVACUEE_MOVES, EvacueeStatus
from services.repatriation.plans import Plan
from services.repatriation.steps import Change, Decision, Workflow
from shared.envelope import Event
from shared.errors import Conflict
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.events.repatriation import RepatriationKind, StepChanged, WorkflowChanged
from shared.mongo import Doc, applied_once, merge_updates
from shared.service import Runtime
from shared.vocab import REGION_OF_COUNTRY, Region

log = logging.getLogger("lindungi.repatriation")

WORKFLOW_NS = uuid.UUID("3b0f5c5e-8d0a-4c8e-b1f2-6a7e9d2c4f11")
FANOUT_LEASE_SECONDS = 30.0
# The event the fan-out tells its evacuation when every registered worker is listed: it completes
# the step whose plan waits for it (`on_event` in workflows/evacuation.yaml).
WORKERS_LISTED = "workers_listed"


class NotFound(Exception):
    """No such workflow."""


def workflow_id_for(request_id: str) -> str:
    """The id a start request creates: derived, so the same request twice finds the same workflow."""
    return uuid.uuid5(WORKFLOW_NS, request_id).hex


def events_for(wf: Workflow, changes: list[Change]) -> list[Event]:
    """The events a decision's changes are told as."""
    out: list[Event] = []
    for c in changes:
        if c.scope == "workflow":
            out.append(
                WorkflowChanged(
                    repatriation_id=wf.id,
                    case_id=wf.case_id,
                    kind=wf.kind,
                    status=c.status,  # type: ignore[arg-type]
                    actor=c.actor,
                    reason=c.reason,
                    at=c.at,
                    to_step=c.to_step,
                    country=wf.country,
                    home_province=wf.home_province,
                )
            )
        else:
            out.append(
                StepChanged(
                    repatriation_id=wf.id,
                    case_id=wf.case_id,
                    kind=wf.kind,
                    step=c.step or "",
                    status=c.status,  # type: ignore[arg-type]
                    owner=c.owner or "",
                    due_at=c.due_at,
                    actor=c.actor,
                    reason=c.reason,
                    evidence=list(c.evidence),
                    at=c.at,
                    effect=c.effect,
                    attempt=c.attempt,
                )
            )
    return out


def timeline_for(changes: list[Change]) -> list[Doc]:
    """Timeline entries, one per change, in the order they happened."""
    keys = (
        "scope",
        "status",
        "step",
        "owner",
        "actor",
        "at",
        "due_at",
        "reason",
        "effect",
        "attempt",
        "to_step",
    )
    out = []
    for c in changes:
        entry = {k: getattr(c, k) for k in keys if getattr(c, k) is not None}
        if c.evidence:
            entry["evidence"] = list(c.evidence)
        out.append(entry)
    return out


def _write(rt: Runtime, wf: Workflow, changes: list[Change]) -> tuple[Doc, list[Doc]]:
    """The timeline update and the outbox entries of a decision."""
    entries = [rt.outbox.entry(e, key=wf.id) for e in events_for(wf, changes)]
    return {"$push": {"timeline": {"$each": timeline_for(changes)}}}, entries


def countries_of(country: str, region: str | None) -> list[str]:
    """The countries an evacuation covers: the country, or every country of a desk region."""
    if region and region in Region.__members__.values():
        found = sorted(c for c, r in REGION_OF_COUNTRY.items() if r == region)
        if found:
            return found
    return [country.upper()]


async def start(
    *,
    rt: Runtime,
    kind: RepatriationKind,
    request_id: str,
    requested_by: str,
    actor: str,
    reason: str,
    country: str,
    case_id: str | None = None,
    worker_id: str | None = None,
    worker_key: str | None = None,
    worker_name: str | None = None,
    region: str | None = None,
    home_province: str | None = None,
    home_regency: str | None = None,
    facts: dict[str, bool] | None = None,
) -> tuple[Literal["inserted", "exists", "live"], Doc]:
    """Start a workflow once per request; a live one of the same kind for the case wins."""
    plan = plans.load()[kind]
    if worker_id and not (home_province and worker_name):
        known = await rt.db[store.DEPARTURES].find_one({"worker_id": worker_id}, sort=[("version", -1)])
        if known:
            home_province = home_province or known.get("home_province")
            home_regency = home_regency or known.get("home_regency")
            worker_name = worker_name or known.get("full_name")
    wf, changes = commands.start(
        plan,
        id=workflow_id_for(request_id),
        request_id=request_id,
        requested_by=requested_by,
        actor=actor,
        reason=reason,
        country=country,
        now=rt.clock.now(),
        case_id=case_id,
        worker_id=worker_id,
        worker_key=worker_key,
        worker_name=worker_name,
        region=region,
        home_province=home_province,
        home_regency=home_regency,
        facts=facts,
    )
    update, entries = _write(rt, wf, changes)
    doc = store.to_doc(wf)
    doc["timeline"] = update["$push"]["timeline"]["$each"]
    key = store.live_key(wf)
    if key:
        doc["live_key"] = key
    if kind == RepatriationKind.EVACUATION:
        doc["fanout"] = {"status": "pending", "countries": countries_of(country, region)}
    for _ in range(3):
        try:
            outcome, stored = await store.insert_workflow(rt.db, rt.outbox.on_insert(dict(doc), entries))
            break
        except DuplicateKeyError:
            continue  # the live one finished between our insert and our look: try again
    else:
        raise RuntimeError("could not start the workflow: its key kept changing")
    if outcome == "inserted":
        rt.relay.wake(doc["_id"])
        log.info("repatriation started", extra={"case_id": case_id or "-"})
    if kind == RepatriationKind.EVACUATION and outcome != "live":
        await fan_out(rt=rt, workflow_id=stored["_id"])
        stored = await store.get(rt.db, stored["_id"]) or stored
    return outcome, store_out(stored)


def store_out(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_outbox") and k != "_applied"}


async def act(
    *,
    rt: Runtime,
    workflow_id: str,
    decide: Callable[[Plan, Workflow], Decision],
    extra_update: Doc | None = None,
    event_id: str | None = None,
    attempts: int = 5,
) -> tuple[Doc, list[Change]]:
    """Apply a command to a workflow: decide on the stored state, write state+timeline+events at once.

    A concurrent change (the version moved) makes us decide again on the fresh state, so two
    replicas never both apply a transition; an event id already applied changes nothing.
    """
    for _ in range(attempts):
        doc = await store.get(rt.db, workflow_id, with_internals=True)
        if doc is None:
            raise NotFound(workflow_id)
        if event_id is not None and event_id in (doc.get("_applied") or []):
            return store_out(doc), []
        wf = store.from_doc(doc)
        new, changes = decide(plans.load()[wf.kind], wf)
        if not changes:
            return store_out(doc), []
        update, entries = _write(rt, new, changes)
        updates = [update, extra_update or {}]
        filter_extra = None
        if event_id is not None:
            filter_extra, once = applied_once(event_id)
            updates.append(once)
        saved = await store.save(
            rt.db,
            new,
            expected_version=wf.version,
            update=rt.outbox.on_update(merge_updates(*updates), entries),
            filter_extra=filter_extra,
        )
        if saved is not None:
            rt.relay.wake(saved["_id"])
            return store_out(saved), changes
    raise Conflict("the workflow kept changing under us; try again")


# ---------------------------------------------------------------- evacuation fan-out


async def fan_out(*, rt: Runtime, workflow_id: str, claimed: Doc | None = None) -> int | None:
    """List every registered worker abroad in the evacuation's area as its own progress document.

    Resumable and idempotent: progress documents have derived ids, so a fan-out interrupted by a
    crash is simply run again (by the sweeper once its lease lapses) and adds only what is missing.
    Returns the number of workers tracked, or None if another replica holds the fan-out.
    """
    doc = claimed or await store.claim_fanout_of(
        rt.db, workflow_id, owner=rt.instance, lease_seconds=FANOUT_LEASE_SECONDS
    )
    if doc is None:
        return None
    countries: list[str] = doc["fanout"]["countries"]
    now = rt.clock.now()
    cursor = await store.departures_abroad(rt.db, countries)
    batch: list[Doc] = []
    async for d in cursor:
        batch.append(evacuee_doc(workflow_id, d, now))
        if len(batch) >= store.BATCH:
            await store.insert_evacuees(rt.db, batch)
            await store.renew_fanout(
                rt.db, workflow_id, owner=rt.instance, lease_seconds=FANOUT_LEASE_SECONDS
            )
            batch = []
    await store.insert_evacuees(rt.db, batch)
    n = await store.count_evacuees(rt.db, workflow_id)
    finished = {"$set": {"fanout.status": "done", "fanout.count": n, "fanout.finished_at": now}}
    try:
        _, changes = await act(
            rt=rt,
            workflow_id=workflow_id,
            decide=lambda plan, wf: commands.on_event(
                plan,
                wf,
                event=WORKERS_LISTED,
                actor="system",
                now=now,
                evidence=[f"departures projection: {n} workers abroad in {', '.join(countries)}"],
            ),
            extra_update=merge_updates(finished, {"$unset": {"fanout.lease": ""}}),
        )
    except Conflict:
        changes = []
    if not changes:
        # cancelled meanwhile, or the step was already completed: the list stands, mark it done
        await rt.db[store.WORKFLOWS].update_one({"_id": workflow_id}, finished)
    return n


def evacuee_doc(evacuation_id: str, d: Doc, now: datetime) -> Doc:
    return {
        "_id": store.evacuee_id(evacuation_id, d["worker_id"]),
        "evacuation_id": evacuation_id,
        "worker_id": d["worker_id"],
        "full_name": d.get("full_name"),
        "home_province": d.get("home_province"),
        "home_regency": d.get("home_regency"),
        "country": d.get("destination_country"),
        "registered": True,
        "non_procedural": False,
        "status": EvacueeStatus.UNACCOUNTED.value,
        "listed_at": now,
        "updated_at": now,
    }


async def sweep_fanouts(rt: Runtime, *, idle_seconds: float = 2.0) -> None:
    """Resume fan-outs a stopped replica left unfinished (run in the background of every replica)."""
    while True:
        try:
            doc = await store.claim_fanout(rt.db, owner=rt.instance, lease_seconds=FANOUT_LEASE_SECONDS)
            if doc is not None:
                await fan_out(rt=rt, workflow_id=doc["_id"], claimed=doc)
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evacuation fan-out failed; will retry")
        await asyncio.sleep(idle_seconds)


async def move_evacuees(
    *,
    rt: Runtime,
    evacuation_id: str,
    worker_ids: list[str],
    status: EvacueeStatus,
    actor: str,
    note: str | None = None,
    confirmed: bool = False,
) -> int:
    """Move workers to a new evacuation status, from whichever statuses may lead there.

    `confirmed` (a supervisor, status unaccounted): the search is over, the worker counts as
    accounted for. When every worker is accounted for, the evacuation completes by itself.
    """
    before = [b.value for b, a in EVACUEE_MOVES if a == status]
    if confirmed:
        before.append(status.value)  # confirming those already unaccounted
    now = rt.clock.now()
    entry: dict[str, Any] = {"status": status.value, "by": actor, "at": now}
    if note:
        entry["note"] = note
    if confirmed:
        entry["confirmed"] = True
    moved = await store.move_evacuees(
        rt.db,
        evacuation_id=evacuation_id,
        worker_ids=worker_ids,
        before=before,
        set_={
            "status": status.value,
            "updated_at": now,
            "updated_by": actor,
            "confirmed_unaccounted": confirmed,
        },
        entry=entry,
    )
    if moved:
        await complete_if_accounted_for(rt=rt, evacuation_id=evacuation_id)
    return moved


async def complete_if_accounted_for(*, rt: Runtime, evacuation_id: str) -> bool:
    """Complete an evacuation whose listing is done and whose every worker is home, safe or
    confirmed unaccounted; True if it completed now."""
    doc = await store.get(rt.db, evacuation_id)
    if doc is None or doc.get("status") != "active" or doc.get("fanout", {}).get("status") != "done":
        return False
    accounted = [s.value for s in ACCOUNTED_FOR]
    if not await store.count_evacuees(rt.db, evacuation_id) or await store.someone_unaccounted(
        rt.db, evacuation_id, accounted
    ):
        return False
    now = rt.clock.now()
    reason = "every worker is accounted for (home, safe, or confirmed unaccounted by a supervisor)"
    try:
        _, changes = await act(
            rt=rt,
            workflow_id=evacuation_id,
            decide=lambda plan, wf: commands.all_accounted_for(plan, wf, now=now, reason=reason),
        )
    except Conflict:
        return False
    return bool(changes)


async def add_reported_person(rt: Runtime, incident: IncidentAccepted) -> int:
    """A worker a mission reports in a live evacuation's area joins its list, registered or not.

    Listed by worker id when matched (one document with the fan-out's), else by the report's
    worker key, marked non-procedural. The mission knows where they are: located. A report that
    names no worker (a group of people) lists no one.

    A person listed already (by the fan-out, or an earlier report) and still unaccounted is
    found: located. One further along (located, safe, in transit, home) keeps the status: a
    report says where someone is, it does not undo their progress; the report is noted in the
    person's history (once per incident) for the desk to see.
    """
    if incident.worker_key.startswith("group-"):
        return 0
    worker_id = incident.match.worker_id
    person = worker_id or incident.worker_key
    now = rt.clock.now()
    added = 0
    for evacuation_id in await store.live_evacuations_in(rt.db, incident.country):
        doc = {
            "_id": store.evacuee_id(evacuation_id, person),
            "evacuation_id": evacuation_id,
            "worker_id": person,
            "registered": worker_id is not None,
            "non_procedural": worker_id is None,
            "full_name": incident.worker_name,
            "home_province": None,
            "country": incident.country,
            "incident_id": incident.incident_id,
            "reported_by": incident.mission_id,
            "status": EvacueeStatus.LOCATED.value,
            "listed_at": now,
            "updated_at": now,
            "history": [
                {
                    "status": EvacueeStatus.LOCATED.value,
                    "by": incident.mission_id,
                    "at": now,
                    "incident_id": incident.incident_id,
                    "note": "reported",
                }
            ],
        }
        if worker_id:
            known = await rt.db[store.DEPARTURES].find_one({"worker_id": worker_id}, sort=[("version", -1)])
            if known:
                doc.update(full_name=known.get("full_name"), home_province=known.get("home_province"))
        if await store.insert_evacuees(rt.db, [doc]):
            added += 1
            continue
        note = f"reported by {incident.mission_id} (incident {incident.incident_id})"
        entry = {"by": incident.mission_id, "at": now, "incident_id": incident.incident_id}
        found = {
            "status": EvacueeStatus.LOCATED.value,
            "updated_at": now,
            "updated_by": incident.mission_id,
            "confirmed_unaccounted": False,
            "incident_id": incident.incident_id,
            "reported_by": incident.mission_id,
        }
        if not await store.move_evacuees(
            rt.db,
            evacuation_id=evacuation_id,
            worker_ids=[person],
            before=[EvacueeStatus.UNACCOUNTED.value],
            set_=found,
            entry={**entry, "status": EvacueeStatus.LOCATED.value, "note": note},
        ):
            await store.note_evacuee(
                rt.db, store.evacuee_id(evacuation_id, person), {**entry, "note": f"{note}; status kept"}
            )
    return added


async def match_reported_person(rt: Runtime, m: IncidentMatched) -> int:
    """A person listed by a report's worker key was matched late to a registered worker: the list
    shows the worker (id, name, province, registered), not the bare report.

    Evacuee ids are derived from the person, so the report's document is replaced by the
    worker's: made (or, if the fan-out listed the worker already, joined: it takes the report's
    status while it was unaccounted), then the report's removed. Redelivered, it finds the work
    done (a crash between the two writes is completed then). How many were replaced.
    """
    worker_id = m.match.worker_id
    if not worker_id or not m.country or m.worker_key.startswith("group-"):
        return 0
    now = rt.clock.now()
    known = await rt.db[store.DEPARTURES].find_one({"worker_id": worker_id}, sort=[("version", -1)])
    replaced = 0
    for evacuation_id in await store.live_evacuations_in(rt.db, m.country):
        old = await store.get_evacuee(rt.db, evacuation_id, m.worker_key)
        if old is None or old.get("registered"):
            continue
        entry = {
            "by": "intake",
            "at": now,
            "incident_id": m.incident_id,
            "note": f"the report's worker was matched to a registered worker ({m.match.method})",
        }
        facts = {
            "worker_id": worker_id,
            "registered": True,
            "non_procedural": False,
            "full_name": (known or {}).get("full_name") or old.get("full_name"),
            "home_province": (known or {}).get("home_province") or old.get("home_province"),
            "home_regency": (known or {}).get("home_regency"),
            "matched_from": m.worker_key,
            "updated_at": now,
        }
        new = {
            **{k: v for k, v in old.items() if k != "history"},
            **facts,
            "_id": store.evacuee_id(evacuation_id, worker_id),
            "history": [*(old.get("history") or []), {**entry, "status": old["status"]}],
        }
        if not await store.insert_evacuees(rt.db, [new]):
            # listed by the fan-out already: one person, one line; the report's news counts
            # while the worker was still unaccounted there
            if old["status"] != EvacueeStatus.UNACCOUNTED.value:
                await store.move_evacuees(
                    rt.db,
                    evacuation_id=evacuation_id,
                    worker_ids=[worker_id],
                    before=[EvacueeStatus.UNACCOUNTED.value],
                    set_={
                        "status": old["status"],
                        "updated_at": now,
                        "confirmed_unaccounted": False,
                        "incident_id": old.get("incident_id"),
                        "reported_by": old.get("reported_by"),
                    },
                    entry={**entry, "status": old["status"]},
                )
            await store.note_evacuee(
                rt.db, store.evacuee_id(evacuation_id, worker_id), {**entry, "matched_from": m.worker_key}
            )
        await store.remove_evacuee(rt.db, old["_id"])
        replaced += 1
        await complete_if_accounted_for(rt=rt, evacuation_id=evacuation_id)
    return replaced
