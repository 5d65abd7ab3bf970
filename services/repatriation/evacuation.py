"""repatriation's evacuations, the service side: the fan-out that lists every registered worker
abroad in the area, the sweeper that resumes it, moves of people, reports of people, completion.

Workflow decisions go through `service.act` like every other command; the people are one
document each (store.EVACUEES), moved with the rules of evacuees.py.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from services.repatriation import commands, service, store
from services.repatriation.evacuees import ACCOUNTED_FOR, EVACUEE_MOVES, EvacueeStatus
from shared.errors import Conflict
from shared.events.intake import IncidentAccepted, IncidentMatched
from shared.mongo import Doc, merge_updates
from shared.service import Runtime

log = logging.getLogger("lindungi.repatriation")

FANOUT_LEASE_SECONDS = 30.0
# The event the fan-out tells its evacuation when every registered worker is listed: it completes
# the step whose plan waits for it (`on_event` in workflows/evacuation.yaml).
WORKERS_LISTED = "workers_listed"


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
    # The workers met, counted here rather than by counting the evacuees afterwards: on FerretDB
    # that count decoded every evacuee just written (40 s of 78 at 100,000, docs/performance.md).
    # A resumed fan-out reads every departure again, so the number is whole after a crash too.
    workers: set[str] = set()
    async for departure in cursor:
        workers.add(departure["worker_id"])
        batch.append(evacuee_doc(workflow_id, departure, now))
        if len(batch) >= store.BATCH:
            await store.insert_evacuees(rt.db, batch)
            await store.renew_fanout(
                rt.db, workflow_id, owner=rt.instance, lease_seconds=FANOUT_LEASE_SECONDS
            )
            batch = []
    await store.insert_evacuees(rt.db, batch)
    listed = len(workers)
    finished = {"$set": {"fanout.status": "done", "fanout.count": listed, "fanout.finished_at": now}}
    try:
        _, changes = await service.act(
            rt=rt,
            workflow_id=workflow_id,
            decide=lambda plan, wf: commands.on_event(
                plan,
                wf,
                event=WORKERS_LISTED,
                actor="system",
                now=now,
                evidence=[f"departures projection: {listed} workers abroad in {', '.join(countries)}"],
            ),
            extra_update=merge_updates(finished, {"$unset": {"fanout.lease": ""}}),
        )
    except Conflict:
        changes = []
    if not changes:
        # cancelled meanwhile, or the step was already completed: the list stands, mark it done
        await rt.db[store.WORKFLOWS].update_one({"_id": workflow_id}, finished)
    return listed


def evacuee_doc(evacuation_id: str, departure: Doc, now: datetime) -> Doc:
    """A worker of the departures projection as one of the evacuation's people: unaccounted."""
    return {
        "_id": store.evacuee_id(evacuation_id, departure["worker_id"]),
        "evacuation_id": evacuation_id,
        "worker_id": departure["worker_id"],
        "full_name": departure.get("full_name"),
        "home_province": departure.get("home_province"),
        "home_regency": departure.get("home_regency"),
        "country": departure.get("destination_country"),
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
        _, changes = await service.act(
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


async def match_reported_person(rt: Runtime, matched: IncidentMatched) -> int:
    """A person listed by a report's worker key was matched late to a registered worker: the list
    shows the worker (id, name, province, registered), not the bare report.

    Evacuee ids are derived from the person, so the report's document is replaced by the
    worker's: made (or, if the fan-out listed the worker already, joined: it takes the report's
    status while it was unaccounted), then the report's removed. Redelivered, it finds the work
    done (a crash between the two writes is completed then). How many were replaced.
    """
    worker_id = matched.match.worker_id
    if not worker_id or not matched.country or matched.worker_key.startswith("group-"):
        return 0
    now = rt.clock.now()
    known = await rt.db[store.DEPARTURES].find_one({"worker_id": worker_id}, sort=[("version", -1)])
    replaced = 0
    for evacuation_id in await store.live_evacuations_in(rt.db, matched.country):
        old = await store.get_evacuee(rt.db, evacuation_id, matched.worker_key)
        if old is None or old.get("registered"):
            continue
        entry = {
            "by": "intake",
            "at": now,
            "incident_id": matched.incident_id,
            "note": f"the report's worker was matched to a registered worker ({matched.match.method})",
        }
        facts = {
            "worker_id": worker_id,
            "registered": True,
            "non_procedural": False,
            "full_name": (known or {}).get("full_name") or old.get("full_name"),
            "home_province": (known or {}).get("home_province") or old.get("home_province"),
            "home_regency": (known or {}).get("home_regency"),
            "matched_from": matched.worker_key,
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
                rt.db,
                store.evacuee_id(evacuation_id, worker_id),
                {**entry, "matched_from": matched.worker_key},
            )
        await store.remove_evacuee(rt.db, old["_id"])
        replaced += 1
        await complete_if_accounted_for(rt=rt, evacuation_id=evacuation_id)
    return replaced


async def people(
    *,
    rt: Runtime,
    evacuation_id: str,
    status: EvacueeStatus | None,
    provinces: list[str] | None,
    limit: int,
    skip: int,
) -> list[Doc]:
    """The people of an evacuation, by id, with their status (only those of `provinces` when given)."""
    query: Doc = {"evacuation_id": evacuation_id}
    if status:
        query["status"] = status.value
    if provinces is not None:
        query["home_province"] = {"$in": provinces}
    return await store.list_evacuees(rt.db, query, limit=limit, skip=skip)


async def progress(*, rt: Runtime, evacuation: Doc, provinces: list[str] | None, by_province: bool) -> Doc:
    """How many workers are unaccounted, located, safe, in transit, home: in total and by province
    (only those of `provinces` when given: a region sees its own)."""
    evacuation_id = evacuation["_id"]
    match: Doc = {"evacuation_id": evacuation_id}
    if provinces is not None:
        match["home_province"] = {"$in": provinces}
    by_status = {s.value: 0 for s in EvacueeStatus}
    per_province: dict[str, dict[str, int]] | None = {} if by_province else None
    rows = await store.progress(rt.db, match, ["status", "home_province"] if by_province else ["status"])
    for row in rows:
        by_status[row["_id"]["status"]] += row["n"]
        if per_province is not None:
            province = row["_id"].get("home_province") or "unknown"
            per_province.setdefault(province, {})[row["_id"]["status"]] = row["n"]
    non_procedural = await store.progress(rt.db, {**match, "non_procedural": True}, [])
    confirmed = await store.progress(rt.db, {**match, "confirmed_unaccounted": True}, [])
    return {
        "evacuation_id": evacuation_id,
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_province": per_province,
        "fanout": evacuation.get("fanout", {}).get("status", "done"),
        "non_procedural": sum(r["n"] for r in non_procedural),
        "confirmed_unaccounted": sum(r["n"] for r in confirmed),
        "status": evacuation.get("status", "active"),
    }
