"""repatriation's HTTP side: start, steps by their owners, evacuations, and the provinces' view."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from services.repatriation import domain, plans, service, store
from services.repatriation.models import (
    CompleteIn,
    EvacuationIn,
    EvacueesIn,
    EvacueesMoved,
    HomeProvinceIn,
    Progress,
    ReasonIn,
    RerouteIn,
    StartIn,
)
from shared import paging
from shared.auth import Principal, require
from shared.errors import Conflict
from shared.events.repatriation import RepatriationKind
from shared.mongo import Doc
from shared.service import Runtime, runtime

router = APIRouter(prefix="/v1", tags=["repatriation"])

DESK = ("officer", "supervisor")
STARTERS = (*DESK, "mission")
READERS = (*DESK, "mission", "debarkation", "region", "auditor", "administrator")
ACTORS = (*DESK, "mission", "debarkation", "region")


def _out(doc: Doc, p: Principal) -> Doc:
    """A workflow as answered: its current step, what that step needs, and what the caller may do on it."""
    doc = {k: v for k, v in doc.items() if k != "live_key"}
    doc["repatriation_id"] = doc.pop("_id")
    current = next((s for s in doc.get("steps", []) if s["status"] in ("active", "failed")), None)
    doc["current_step"] = current["name"] if current else None
    doc["current_step_status"] = current["status"] if current else None
    plan = plans.load()[RepatriationKind(doc["kind"])]
    d = plan.step(current["name"]) if current else None
    doc["current_step_needs"] = {"evidence": d.evidence, "requires": d.requires} if d else None
    doc["actions"] = domain.available_step_actions(
        plan,
        status=doc["status"],
        step=current["name"] if current else None,
        step_status=current["status"] if current else None,
        roles=p.roles,
        countries=p.countries,
        provinces=p.provinces,
        country=doc["country"],
        home_province=doc.get("home_province"),
    )
    doc["workflow_actions"] = domain.workflow_actions(
        plan,
        status=doc["status"],
        steps=doc.get("steps", []),
        current=current["name"] if current else None,
        roles=p.roles,
        countries=p.countries,
        provinces=p.provinces,
        country=doc["country"],
        home_province=doc.get("home_province"),
    )
    doc["may_set_home_province"] = domain.may_set_home_province(
        kind=doc["kind"], status=doc["status"], roles=p.roles
    )
    return doc


def _conflict(msg: str, doc: Doc | None = None) -> HTTPException:
    item: dict[str, Any] = {"field": "status", "reason": msg}
    if doc is not None:
        cur = next((s for s in doc.get("steps", []) if s["status"] in ("active", "failed")), None)
        item |= {
            "current_status": doc.get("status"),
            "current_step": cur["name"] if cur else None,
            "current_step_status": cur["status"] if cur else None,
            "repatriation_id": doc.get("_id"),
        }
    return HTTPException(409, detail=[item])


def _forbid(reason: str) -> HTTPException:
    return HTTPException(403, detail=[{"field": "authorization", "reason": reason}])


def _not_found() -> HTTPException:
    return HTTPException(404, detail=[{"field": "repatriation_id", "reason": "no such repatriation"}])


def _may_read(p: Principal, doc: Doc) -> bool:
    if p.is_mission:
        return p.may_see_country(doc["country"])
    if p.roles & set(READERS) == {"region"}:
        return doc.get("home_province") in p.provinces or doc.get("kind") == "evacuation"
    return True


def _check(p: Principal, action: str, doc: Doc, owner: str) -> None:
    why = domain.authorise(
        action,
        owner=owner,
        roles=p.roles,
        countries=p.countries,
        provinces=p.provinces,
        country=doc["country"],
        home_province=doc.get("home_province"),
    )
    if why:
        raise _forbid(why)


async def _case_exists(rt: Runtime, case_id: str | None) -> None:
    """Refuse a workflow for a case casework never opened (its events would have nowhere to go)."""
    if case_id and not await store.case_known(rt.db, case_id):
        reason = "no such case (casework has not opened it, or it has not reached repatriation yet)"
        raise HTTPException(404, detail=[{"field": "case_id", "reason": reason}])


@router.post("/repatriations", status_code=201)
async def start_repatriation(
    body: StartIn, request: Request, response: Response, p: Principal = Depends(require(*STARTERS))
) -> Doc:
    """Start a living-worker or remains repatriation (201); the same request_id again answers 200."""
    if body.kind == RepatriationKind.EVACUATION:
        raise HTTPException(422, detail=[{"field": "kind", "reason": "start evacuations at /v1/evacuations"}])
    if p.is_mission and not p.may_see_country(body.country):
        raise _forbid(f"{body.country} is outside this mission's jurisdiction")
    if not (body.case_id or body.worker_id or body.worker_key):
        raise HTTPException(
            422, detail=[{"field": "case_id", "reason": "give a case_id, a worker_id or a worker_key"}]
        )
    rt = runtime(request)
    await _case_exists(rt, body.case_id)
    outcome, doc = await service.start(
        rt=rt,
        kind=body.kind,
        request_id=body.request_id or uuid.uuid4().hex,
        requested_by="mission" if p.is_mission else "desk",
        actor=p.id,
        reason=body.reason,
        country=body.country,
        case_id=body.case_id,
        worker_id=body.worker_id,
        worker_key=body.worker_key,
        worker_name=body.worker_name,
        home_province=body.home_province,
        home_regency=body.home_regency,
        facts=body.facts.model_dump(),
    )
    if outcome == "live":
        raise _conflict(f"a live {body.kind} repatriation exists for this case", doc)
    if outcome == "exists":
        response.status_code = 200
    return _out(doc, p)


@router.post("/evacuations", status_code=201)
async def start_evacuation(
    body: EvacuationIn, request: Request, response: Response, p: Principal = Depends(require(*STARTERS))
) -> Doc:
    """Start an evacuation: every registered worker abroad there is listed and tracked (201)."""
    if p.is_mission and not p.may_see_country(body.country):
        raise _forbid(f"{body.country} is outside this mission's jurisdiction")
    await _case_exists(runtime(request), body.case_id)
    outcome, doc = await service.start(
        rt=runtime(request),
        kind=RepatriationKind.EVACUATION,
        request_id=body.request_id or uuid.uuid4().hex,
        requested_by="mission" if p.is_mission else "desk",
        actor=p.id,
        reason=body.reason,
        country=body.country,
        case_id=body.case_id,
        region=body.region.value if body.region else None,
    )
    if outcome == "live":
        raise _conflict("a live evacuation exists for this area", doc)
    if outcome == "exists":
        response.status_code = 200
    return _out({k: v for k, v in doc.items() if k != "timeline"}, p)


@router.get("/repatriations")
async def list_repatriations(
    request: Request,
    response: Response,
    p: Principal = Depends(require(*READERS)),
    case_id: str | None = None,
    kind: RepatriationKind | None = None,
    status: str | None = Query(None, pattern="^(active|completed|cancelled)$"),
    country: str | None = Query(None, pattern=r"^[A-Z]{2}$"),
    limit: int = Query(50, ge=1, le=paging.MAX_LIMIT),
    after: str | None = Query(None, max_length=1000, description="the Link header's next-page cursor"),
) -> list[Doc]:
    """Repatriations, newest first, a page at a time (the Link header names the next page); a
    mission sees its countries, a region its provinces."""
    q: Doc = {}
    if case_id:
        q["case_id"] = case_id
    if kind:
        q["kind"] = kind.value
    if status:
        q["status"] = status
    if country:
        q["country"] = country
    if p.is_mission:
        q["country"] = {"$in": sorted(p.countries)} if not country else country
        if country and country not in p.countries:
            return []
    elif p.roles & set(READERS) == {"region"}:
        q["home_province"] = {"$in": sorted(p.provinces)}
    docs = await store.find(runtime(request).db, q, limit=limit + 1, after=after)
    return [_out(d, p) for d in paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)]


@router.get("/repatriations/{repatriation_id}")
async def get_repatriation(
    repatriation_id: str, request: Request, p: Principal = Depends(require(*READERS))
) -> Doc:
    """One repatriation: its steps (who did what, when, with what evidence), effects and timeline."""
    doc = await store.get(runtime(request).db, repatriation_id)
    if doc is None or not _may_read(p, doc):
        raise _not_found()
    return _out(doc, p)


async def _step_command(
    request: Request, p: Principal, repatriation_id: str, step: str, action: str, decide: Any
) -> Doc:
    rt = runtime(request)
    doc = await store.get(rt.db, repatriation_id)
    if doc is None or not _may_read(p, doc):
        raise _not_found()
    d = plans.load()[RepatriationKind(doc["kind"])].step(step)
    if d is None:
        raise HTTPException(404, detail=[{"field": "step", "reason": f"no step {step!r} in this workflow"}])
    _check(p, action, doc, d.owner)
    try:
        saved, _ = await service.act(rt=rt, workflow_id=repatriation_id, decide=decide)
    except domain.Invalid as exc:
        raise HTTPException(422, detail=exc.errors) from exc
    except Conflict as exc:
        raise _conflict(str(exc), await store.get(rt.db, repatriation_id)) from exc
    return _out(saved, p)


@router.post("/repatriations/{repatriation_id}/steps/{step}/complete")
async def complete_step(
    repatriation_id: str,
    step: str,
    body: CompleteIn,
    request: Request,
    p: Principal = Depends(require(*ACTORS)),
) -> Doc:
    """The step's owner reports it done, with evidence (document references) and the step's data."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        step,
        "complete",
        lambda plan, wf: domain.complete(
            plan, wf, step=step, actor=p.id, now=now, evidence=body.evidence, data=body.data
        ),
    )


@router.post("/repatriations/{repatriation_id}/steps/{step}/skip")
async def skip_step(
    repatriation_id: str,
    step: str,
    body: ReasonIn,
    request: Request,
    p: Principal = Depends(require(*ACTORS)),
) -> Doc:
    """Skip a step that does not apply, with the reason (owner or desk; skippable steps only)."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        step,
        "skip",
        lambda plan, wf: domain.skip(plan, wf, step=step, actor=p.id, reason=body.reason, now=now),
    )


@router.post("/repatriations/{repatriation_id}/steps/{step}/fail")
async def fail_step(
    repatriation_id: str,
    step: str,
    body: ReasonIn,
    request: Request,
    p: Principal = Depends(require(*ACTORS)),
) -> Doc:
    """The step's owner reports it failed; the workflow waits for a retry, re-route or cancel."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        step,
        "fail",
        lambda plan, wf: domain.fail(plan, wf, step=step, actor=p.id, reason=body.reason, now=now),
    )


@router.post("/repatriations/{repatriation_id}/steps/{step}/retry")
async def retry_step(
    repatriation_id: str,
    step: str,
    body: ReasonIn,
    request: Request,
    p: Principal = Depends(require(*ACTORS)),
) -> Doc:
    """Try a failed step again, with a fresh deadline (owner or desk)."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        step,
        "retry",
        lambda plan, wf: domain.retry(plan, wf, step=step, actor=p.id, reason=body.reason, now=now),
    )


@router.post("/repatriations/{repatriation_id}/reroute")
async def reroute(
    repatriation_id: str, body: RerouteIn, request: Request, p: Principal = Depends(require(*ACTORS))
) -> Doc:
    """Send the workflow back to an earlier step (a different flight); what lies between is undone."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        body.to_step,
        "reroute",
        lambda plan, wf: domain.reroute(
            plan, wf, to_step=body.to_step, actor=p.id, reason=body.reason, now=now
        ),
    )


@router.post("/repatriations/{repatriation_id}/home-province")
async def set_home_province(
    repatriation_id: str, body: HomeProvinceIn, request: Request, p: Principal = Depends(require(*DESK))
) -> Doc:
    """The desk sets or corrects the worker's home province, with a reason (on both timelines)."""
    rt = runtime(request)
    doc = await store.get(rt.db, repatriation_id)
    if doc is None or not _may_read(p, doc):
        raise _not_found()
    now = rt.clock.now()
    try:
        saved, _ = await service.act(
            rt=rt,
            workflow_id=repatriation_id,
            decide=lambda plan, wf: domain.set_home_province(
                plan, wf, province=body.home_province, actor=p.id, reason=body.reason, now=now
            ),
        )
    except Conflict as exc:
        raise _conflict(str(exc), await store.get(rt.db, repatriation_id)) from exc
    return _out(saved, p)


@router.post("/repatriations/{repatriation_id}/cancel")
async def cancel(
    repatriation_id: str, body: ReasonIn, request: Request, p: Principal = Depends(require(*ACTORS))
) -> Doc:
    """Cancel with a reason; every booking is released and all funding returned, visibly."""
    now = runtime(request).clock.now()
    return await _step_command(
        request,
        p,
        repatriation_id,
        "completed",
        "cancel",
        lambda plan, wf: domain.cancel(plan, wf, actor=p.id, reason=body.reason, now=now),
    )


# ---------------------------------------------------------------- evacuations


async def _evacuation(request: Request, p: Principal, evacuation_id: str) -> Doc:
    doc = await store.get(runtime(request).db, evacuation_id)
    if doc is None or doc.get("kind") != "evacuation" or not _may_read(p, doc):
        raise HTTPException(404, detail=[{"field": "evacuation_id", "reason": "no such evacuation"}])
    return doc


@router.get("/evacuations/{evacuation_id}/progress")
async def evacuation_progress(
    evacuation_id: str,
    request: Request,
    p: Principal = Depends(require(*READERS)),
    by_province: bool = False,
) -> Progress:
    """How many workers are unaccounted, located, safe, in transit, home: in total and by province."""
    doc = await _evacuation(request, p, evacuation_id)
    db = runtime(request).db
    match: Doc = {"evacuation_id": evacuation_id}
    if p.roles & set(READERS) == {"region"}:
        match["home_province"] = {"$in": sorted(p.provinces)}
    by_status = {s.value: 0 for s in domain.EvacueeStatus}
    provinces: dict[str, dict[str, int]] | None = {} if by_province else None
    for row in await store.progress(db, match, ["status", "home_province"] if by_province else ["status"]):
        by_status[row["_id"]["status"]] += row["n"]
        if provinces is not None:
            prov = row["_id"].get("home_province") or "unknown"
            provinces.setdefault(prov, {})[row["_id"]["status"]] = row["n"]
    return Progress(
        evacuation_id=evacuation_id,
        total=sum(by_status.values()),
        by_status=by_status,
        by_province=provinces,
        fanout=doc.get("fanout", {}).get("status", "done"),
        non_procedural=sum(r["n"] for r in await store.progress(db, {**match, "non_procedural": True}, [])),
        confirmed_unaccounted=sum(
            r["n"] for r in await store.progress(db, {**match, "confirmed_unaccounted": True}, [])
        ),
        status=doc.get("status", "active"),
    )


@router.get("/evacuations/{evacuation_id}/workers")
async def evacuation_workers(
    evacuation_id: str,
    request: Request,
    p: Principal = Depends(require(*READERS)),
    status: domain.EvacueeStatus | None = None,
    limit: int = Query(100, ge=1, le=1000),
    skip: int = Query(0, ge=0, le=100_000),
) -> list[Doc]:
    """The workers of an evacuation, each with their own status."""
    await _evacuation(request, p, evacuation_id)
    q: Doc = {"evacuation_id": evacuation_id}
    if status:
        q["status"] = status.value
    if p.roles & set(READERS) == {"region"}:
        q["home_province"] = {"$in": sorted(p.provinces)}
    return await store.list_evacuees(runtime(request).db, q, limit=limit, skip=skip)


@router.post("/evacuations/{evacuation_id}/workers/status")
async def move_evacuees(
    evacuation_id: str,
    body: EvacueesIn,
    request: Request,
    p: Principal = Depends(require(*DESK, "mission", "debarkation")),
) -> EvacueesMoved:
    """Report workers located, safe, in transit, home or unaccounted (mission, desk, debarkation)."""
    doc = await _evacuation(request, p, evacuation_id)
    if p.is_mission and not p.may_see_country(doc["country"]):
        raise _forbid(f"the evacuation is in {doc['country']}, outside this mission's jurisdiction")
    if doc.get("status") != "active":
        raise _conflict(f"the evacuation is {doc.get('status')}", doc)
    if body.confirmed and body.status != domain.EvacueeStatus.UNACCOUNTED:
        raise HTTPException(
            422, detail=[{"field": "confirmed", "reason": "only a move to unaccounted can be confirmed"}]
        )
    if body.confirmed and "supervisor" not in p.roles:
        raise _forbid("only a supervisor confirms workers unaccounted")
    moved = await service.move_evacuees(
        rt=runtime(request),
        evacuation_id=evacuation_id,
        worker_ids=body.worker_ids,
        status=body.status,
        actor=p.id,
        note=body.note,
        confirmed=body.confirmed,
    )
    return EvacueesMoved(requested=len(body.worker_ids), moved=moved)


# ---------------------------------------------------------------- the provinces


@router.get("/region/returns")
async def region_returns(
    request: Request,
    p: Principal = Depends(require("region", *DESK)),
    province: str | None = None,
) -> Doc:
    """Returns to a region: who is arriving, when, where, and which hand-overs await its witness."""
    if "region" in p.roles and not p.roles & set(DESK):
        provinces = sorted(p.provinces if province is None else p.provinces & {province})
    else:
        if not province:
            raise HTTPException(422, detail=[{"field": "province", "reason": "required for desk users"}])
        provinces = [province]
    db = runtime(request).db
    docs = await store.find(
        db,
        {"home_province": {"$in": provinces}, "status": "active", "kind": {"$ne": "evacuation"}},
        limit=500,
    )
    arriving, awaiting = [], []
    for d in docs:
        steps = {s["name"]: s for s in d["steps"]}
        booked = steps.get("travel_booked") or steps.get("cargo_booked") or {}
        cur = next((s for s in d["steps"] if s["status"] in ("active", "failed")), None)
        item = {
            "repatriation_id": d["_id"],
            "kind": d["kind"],
            "case_id": d.get("case_id"),
            "worker_name": d.get("worker_name"),
            "home_province": d.get("home_province"),
            "home_regency": d.get("home_regency"),
            "from_country": d["country"],
            "current_step": cur["name"] if cur else None,
            "current_step_due_at": cur.get("due_at") if cur else None,
            "flight": booked.get("data", {}).get("flight") if booked.get("status") == "done" else None,
            "arrival_at": booked.get("data", {}).get("arrival_at")
            if booked.get("status") == "done"
            else None,
            "debarkation_point": booked.get("data", {}).get("debarkation_point")
            if booked.get("status") == "done"
            else None,
        }
        arriving.append(item)
        if cur is not None and cur["name"] == "handed_over":
            awaiting.append(item)
    arriving.sort(key=lambda i: (i["arrival_at"] is None, i["arrival_at"] or ""))
    evacuees = {
        r["_id"]["status"]: r["n"]
        for r in await store.progress(
            db, {"home_province": {"$in": provinces}, "status": {"$ne": "home"}}, ["status"]
        )
    }
    return {
        "provinces": provinces,
        "arriving": arriving,
        "awaiting_witness": awaiting,
        "evacuees_not_home": evacuees,
    }
