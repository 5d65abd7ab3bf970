"""repatriation's service functions for workflows: start, act (load, decide with commands.py,
store state + timeline + outbox events in one write), and the provinces' read model.

The evacuation's people (fan-out, moves, reports) are in evacuation.py, which decides through
`act` here; `start` hands a new evacuation to its fan-out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from services.repatriation import commands, evacuation, plans, store
from services.repatriation.plans import Plan
from services.repatriation.steps import WAITING, Change, Transition, Workflow, WorkflowRequest
from shared.envelope import Event
from shared.errors import Conflict
from shared.events.repatriation import RepatriationKind, StepChanged, WorkflowChanged
from shared.mongo import Doc, applied_once, merge_updates
from shared.service import Runtime
from shared.vocab import REGION_OF_COUNTRY, Region

log = logging.getLogger("lindungi.repatriation")

WORKFLOW_NS = uuid.UUID("3b0f5c5e-8d0a-4c8e-b1f2-6a7e9d2c4f11")


class NotFound(Exception):
    """No such workflow."""


def workflow_id_for(request_id: str) -> str:
    """The id a start request creates: derived, so the same request twice finds the same workflow."""
    return uuid.uuid5(WORKFLOW_NS, request_id).hex


def events_for(wf: Workflow, changes: list[Change]) -> list[Event]:
    """The events a decision's changes are told as."""
    out: list[Event] = []
    for change in changes:
        if change.scope == "workflow":
            out.append(
                WorkflowChanged(
                    repatriation_id=wf.id,
                    case_id=wf.case_id,
                    kind=wf.kind,
                    status=change.status,  # type: ignore[arg-type]
                    actor=change.actor,
                    reason=change.reason,
                    at=change.at,
                    to_step=change.to_step,
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
                    step=change.step or "",
                    status=change.status,  # type: ignore[arg-type]
                    owner=change.owner or "",
                    due_at=change.due_at,
                    actor=change.actor,
                    reason=change.reason,
                    evidence=list(change.evidence),
                    at=change.at,
                    effect=change.effect,
                    attempt=change.attempt,
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
    for change in changes:
        entry = {k: getattr(change, k) for k in keys if getattr(change, k) is not None}
        if change.evidence:
            entry["evidence"] = list(change.evidence)
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
    *, rt: Runtime, kind: RepatriationKind, request: WorkflowRequest, actor: str
) -> tuple[Literal["inserted", "exists", "live"], Doc]:
    """Start a workflow once per request; a live one of the same kind for the case wins.

    A worker's home and name the request leaves out are taken from the departures projection."""
    plan = plans.load()[kind]
    if request.worker_id and not (request.home_province and request.worker_name):
        known = await store.latest_departure(rt.db, request.worker_id)
        if known:
            home = {
                "home_province": request.home_province or known.get("home_province"),
                "home_regency": request.home_regency or known.get("home_regency"),
                "worker_name": request.worker_name or known.get("full_name"),
            }
            request = request.model_copy(update=home)
    workflow_id = workflow_id_for(request.request_id)
    wf, changes = commands.start(plan, request, id=workflow_id, actor=actor, now=rt.clock.now())
    update, entries = _write(rt, wf, changes)
    doc = store.to_doc(wf)
    doc["timeline"] = update["$push"]["timeline"]["$each"]
    key = store.live_key(wf)
    if key:
        doc["live_key"] = key
    if kind == RepatriationKind.EVACUATION:
        doc["fanout"] = {"status": "pending", "countries": countries_of(request.country, request.region)}
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
        log.info("repatriation started", extra={"case_id": request.case_id or "-"})
    if outcome != "live" and not stored.get("home_province") and kind != RepatriationKind.EVACUATION:
        # A departure or match stored since the read above; also on a retry of this start (the
        # insert done, the fill not: a departure that raced it may have looked already).
        await fill_home(rt, stored["_id"])
    if kind == RepatriationKind.EVACUATION and outcome != "live":
        await evacuation.fan_out(rt=rt, workflow_id=stored["_id"])
        stored = await store.get(rt.db, stored["_id"]) or stored
    return outcome, store_out(stored)


def store_out(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_outbox") and k != "_applied"}


async def fill_home(rt: Runtime, workflow_id: str) -> None:
    """A live workflow with no home takes it from what repatriation knows now: the worker's
    departure recorded last, else the case's late match (commands.learn_home: only what it lacks).

    Called by each of the three that may bring it, after storing its own part (the start after
    its insert, a departure after the projection's write, a match after the case's): of two at
    once, the later read sees both, so a home is never left unlearnt."""
    doc = await store.get(rt.db, workflow_id)
    if doc is None or doc.get("home_province") or doc.get("status") != "active":
        return
    case = await store.case_of(rt.db, doc["case_id"]) if doc.get("case_id") else {}
    worker_id = doc.get("worker_id") or case.get("worker_id")
    departure = await store.latest_departure(rt.db, worker_id) if worker_id else None
    if departure and departure.get("home_province"):
        known: dict[str, Any] = {
            "province": departure["home_province"],
            "worker_id": worker_id,
            "regency": departure.get("home_regency"),
            "name": departure.get("full_name"),
            "actor": "registry",
            "source": f"departure {departure['_id']} v{departure['version']}",
        }
    elif case.get("home_province"):
        known = {
            "province": case["home_province"],
            "worker_id": case.get("worker_id"),
            "actor": "casework",
            "source": f"the case's match to departure {case.get('departure_id') or '-'}",
        }
    else:
        return
    now = rt.clock.now()
    await act(
        rt=rt,
        workflow_id=workflow_id,
        decide=lambda plan, wf: commands.learn_home(plan, wf, now=now, **known),
    )


async def act(
    *,
    rt: Runtime,
    workflow_id: str,
    decide: Callable[[Plan, Workflow], Transition],
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


async def find(
    *,
    rt: Runtime,
    case_id: str | None,
    kind: RepatriationKind | None,
    status: str | None,
    countries: list[str] | None,
    provinces: list[str] | None,
    limit: int,
    after: str | None,
) -> list[Doc]:
    """Workflows, newest first, from the cursor on; `countries` and `provinces` narrow them to what
    a mission or a region may see (None: no narrowing)."""
    query: Doc = {}
    if case_id:
        query["case_id"] = case_id
    if kind:
        query["kind"] = kind.value
    if status:
        query["status"] = status
    if countries is not None:
        query["country"] = countries[0] if len(countries) == 1 else {"$in": countries}
    if provinces is not None:
        query["home_province"] = {"$in": provinces}
    return await store.find(rt.db, query, limit=limit, after=after, now=rt.clock.now())


# ---------------------------------------------------------------- the provinces' read model


async def region_returns(*, rt: Runtime, provinces: list[str]) -> Doc:
    """Returns to these provinces: who is arriving, when, where (the step holding the booking), which
    hand-overs await the region's witness (the plan's `hand_over` step), and evacuees not home yet."""
    docs = await store.find(
        rt.db,
        {"home_province": {"$in": provinces}, "status": "active", "kind": {"$ne": "evacuation"}},
        limit=500,
    )
    arriving, awaiting = [], []
    for doc in docs:
        plan = plans.load()[RepatriationKind(doc["kind"])]
        booking = next(
            (s for s in doc["steps"] if getattr(plan.step(s["name"]), "undo", None) == "booking"), None
        )
        booked = (booking or {}).get("data", {}) if (booking or {}).get("status") == "done" else {}
        current = next((s for s in doc["steps"] if s["status"] in WAITING), None)
        item = {
            "repatriation_id": doc["_id"],
            "kind": doc["kind"],
            "case_id": doc.get("case_id"),
            "worker_name": doc.get("worker_name"),
            "home_province": doc.get("home_province"),
            "home_regency": doc.get("home_regency"),
            "from_country": doc["country"],
            "current_step": current["name"] if current else None,
            "current_step_due_at": current.get("due_at") if current else None,
            "flight": booked.get("flight"),
            "arrival_at": booked.get("arrival_at"),
            "debarkation_point": booked.get("debarkation_point"),
        }
        arriving.append(item)
        if current is not None and getattr(plan.step(current["name"]), "hand_over", False):
            awaiting.append(item)
    arriving.sort(key=lambda i: (i["arrival_at"] is None, i["arrival_at"] or ""))
    evacuees = {
        r["_id"]["status"]: r["n"]
        for r in await store.progress(
            rt.db, {"home_province": {"$in": provinces}, "status": {"$ne": "home"}}, ["status"]
        )
    }
    return {
        "provinces": provinces,
        "arriving": arriving,
        "awaiting_witness": awaiting,
        "evacuees_not_home": evacuees,
    }
