"""repatriation's HTTP side: start, steps by their owners, evacuations, and the provinces' view.

Views translate HTTP: who may ask (roles, jurisdiction), the body, the answer's model and status;
what is decided and read is built in service.py and evacuation.py. The commands that change a
workflow are one table (`COMMANDS`) served by one endpoint factory. One file, as in every service,
for the whole API (about 500 lines, a fifth of them the commands): splitting it would spread the
access helpers every endpoint shares over two modules.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from services.repatriation import authorisation, commands, evacuation, plans, service, store
from services.repatriation.evacuees import EvacueeStatus
from services.repatriation.models import (
    CompleteIn,
    EvacuationIn,
    EvacueesIn,
    EvacueesMoved,
    EvacueeView,
    HomeProvinceIn,
    Progress,
    ReasonIn,
    RegionReturns,
    RepatriationView,
    RerouteIn,
    StartIn,
)
from services.repatriation.plans import Plan
from services.repatriation.steps import WAITING, Transition, Workflow, WorkflowRequest
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


def _current(doc: Doc) -> Doc | None:
    """The step a stored workflow waits on (active or failed), if any."""
    return next((s for s in doc.get("steps", []) if s["status"] in WAITING), None)


def _out(doc: Doc, who: Principal) -> RepatriationView:
    """A workflow as answered: its current step, what that step needs, and what the caller may do on it."""
    current = _current(doc)
    plan = plans.load()[RepatriationKind(doc["kind"])]
    definition = plan.step(current["name"]) if current else None
    caller: dict[str, Any] = {
        "roles": who.roles,
        "countries": who.countries,
        "provinces": who.provinces,
        "country": doc["country"],
        "home_province": doc.get("home_province"),
    }
    fields = {k: v for k, v in doc.items() if k in RepatriationView.model_fields}
    return RepatriationView.model_validate(
        {
            **fields,
            "repatriation_id": doc["_id"],
            "current_step": current["name"] if current else None,
            "current_step_status": current["status"] if current else None,
            "current_step_needs": (
                {"evidence": definition.evidence, "requires": definition.requires} if definition else None
            ),
            "actions": authorisation.available_step_actions(
                plan,
                status=doc["status"],
                step=current["name"] if current else None,
                step_status=current["status"] if current else None,
                **caller,
            ),
            "workflow_actions": authorisation.workflow_actions(
                plan,
                status=doc["status"],
                steps=doc.get("steps", []),
                current=current["name"] if current else None,
                **caller,
            ),
            "may_set_home_province": authorisation.may_set_home_province(
                kind=doc["kind"], status=doc["status"], roles=who.roles
            ),
        }
    )


def _conflict(msg: str, doc: Doc | None = None) -> HTTPException:
    item: dict[str, Any] = {"field": "status", "reason": msg}
    if doc is not None:
        current = _current(doc)
        item |= {
            "current_status": doc.get("status"),
            "current_step": current["name"] if current else None,
            "current_step_status": current["status"] if current else None,
            "repatriation_id": doc.get("_id"),
        }
    return HTTPException(409, detail=[item])


def _forbid(reason: str) -> HTTPException:
    return HTTPException(403, detail=[{"field": "authorization", "reason": reason}])


def _not_found() -> HTTPException:
    return HTTPException(404, detail=[{"field": "repatriation_id", "reason": "no such repatriation"}])


def _may_read(who: Principal, doc: Doc) -> bool:
    if who.is_mission:
        return who.may_see_country(doc["country"])
    if _region_only(who):
        return doc.get("home_province") in who.provinces or doc.get("kind") == "evacuation"
    return True


def _region_only(who: Principal) -> bool:
    """A reader who is a region and nothing more sees only its provinces."""
    return who.roles & set(READERS) == {"region"}


def _check(who: Principal, action: str, doc: Doc, owner: str) -> None:
    why = authorisation.authorise(
        action,
        owner=owner,
        roles=who.roles,
        countries=who.countries,
        provinces=who.provinces,
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


def _request(asked: Doc, who: Principal) -> WorkflowRequest:
    """A start body as the workflow's request: a request id if the caller gave none, and who asks."""
    request_id = asked.pop("request_id", None) or uuid.uuid4().hex
    return WorkflowRequest(
        **asked, request_id=request_id, requested_by="mission" if who.is_mission else "desk"
    )


@router.post("/repatriations", status_code=201)
async def start_repatriation(
    body: StartIn, request: Request, response: Response, who: Principal = Depends(require(*STARTERS))
) -> RepatriationView:
    """Start a living-worker or remains repatriation (201); the same request_id again answers 200."""
    if body.kind == RepatriationKind.EVACUATION:
        raise HTTPException(422, detail=[{"field": "kind", "reason": "start evacuations at /v1/evacuations"}])
    if who.is_mission and not who.may_see_country(body.country):
        raise _forbid(f"{body.country} is outside this mission's jurisdiction")
    if not (body.case_id or body.worker_id or body.worker_key):
        raise HTTPException(
            422, detail=[{"field": "case_id", "reason": "give a case_id, a worker_id or a worker_key"}]
        )
    rt = runtime(request)
    await _case_exists(rt, body.case_id)
    outcome, doc = await service.start(
        rt=rt, kind=body.kind, request=_request(body.model_dump(exclude={"kind"}), who), actor=who.id
    )
    if outcome == "live":
        raise _conflict(f"a live {body.kind} repatriation exists for this case", doc)
    if outcome == "exists":
        response.status_code = 200
    return _out(doc, who)


@router.post("/evacuations", status_code=201)
async def start_evacuation(
    body: EvacuationIn, request: Request, response: Response, who: Principal = Depends(require(*STARTERS))
) -> RepatriationView:
    """Start an evacuation: every registered worker abroad there is listed and tracked (201)."""
    if who.is_mission and not who.may_see_country(body.country):
        raise _forbid(f"{body.country} is outside this mission's jurisdiction")
    await _case_exists(runtime(request), body.case_id)
    outcome, doc = await service.start(
        rt=runtime(request),
        kind=RepatriationKind.EVACUATION,
        request=_request(body.model_dump(mode="json"), who),
        actor=who.id,
    )
    if outcome == "live":
        raise _conflict("a live evacuation exists for this area", doc)
    if outcome == "exists":
        response.status_code = 200
    return _out({k: v for k, v in doc.items() if k != "timeline"}, who)


@router.get("/repatriations")
async def list_repatriations(
    request: Request,
    response: Response,
    who: Principal = Depends(require(*READERS)),
    case_id: str | None = None,
    kind: RepatriationKind | None = None,
    status: str | None = Query(None, pattern="^(active|completed|cancelled)$"),
    country: str | None = Query(None, pattern=r"^[A-Z]{2}$"),
    limit: int = Query(50, ge=1, le=paging.MAX_LIMIT),
    after: str | None = Query(None, max_length=1000, description="the Link header's next-page cursor"),
) -> list[RepatriationView]:
    """Repatriations, newest first, a page at a time (the Link header names the next page); a
    mission sees its countries, a region its provinces. No timeline in a list (null)."""
    if who.is_mission and country and country not in who.countries:
        return []
    docs = await service.find(
        rt=runtime(request),
        case_id=case_id,
        kind=kind,
        status=status,
        countries=[country] if country else sorted(who.countries) if who.is_mission else None,
        provinces=sorted(who.provinces) if _region_only(who) else None,
        limit=limit + 1,
        after=after,
    )
    return [_out(d, who) for d in paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)]


@router.get("/repatriations/{repatriation_id}")
async def get_repatriation(
    repatriation_id: str, request: Request, who: Principal = Depends(require(*READERS))
) -> RepatriationView:
    """One repatriation: its steps (who did what, when, with what evidence), effects and timeline."""
    doc = await store.get(runtime(request).db, repatriation_id)
    if doc is None or not _may_read(who, doc):
        raise _not_found()
    return _out(doc, who)


# ---------------------------------------------------------------- commands, one table


@dataclass(frozen=True)
class Asked:
    """A command as asked over HTTP: the body, who asks, when, and the step it names."""

    body: Any
    actor: str
    now: datetime
    step: str


Decide = Callable[[Plan, Workflow, Asked], Transition]


@dataclass(frozen=True)
class Command:
    """One POST that decides on a workflow: where it is, what it takes, who may ask, what it does."""

    path: str  # after /repatriations/{repatriation_id}
    name: str  # the endpoint's name: its OpenAPI summary and operation id
    body: type[BaseModel]
    roles: tuple[str, ...]
    authorise: str | None  # the action authorisation.authorise checks; None: the roles suffice
    decide: Decide

    @property
    def names(self) -> Literal["step", "to_step", "workflow"]:
        """The step the command names: the path's, the body's `to_step`, or none (the workflow)."""
        if "{step}" in self.path:
            return "step"
        return "to_step" if "to_step" in self.body.model_fields else "workflow"

    @property
    def doc(self) -> str:
        return COMMAND_DOCS[self.name]


def _with_reason(command: Callable[..., Transition]) -> Decide:
    """skip, fail and retry: the step the path names, and the body's reason."""
    return lambda plan, wf, a: command(plan, wf, step=a.step, actor=a.actor, reason=a.body.reason, now=a.now)


def _complete(plan: Plan, wf: Workflow, a: Asked) -> Transition:
    body: CompleteIn = a.body
    return commands.complete(
        plan, wf, step=a.step, actor=a.actor, now=a.now, evidence=body.evidence, data=body.data
    )


def _reroute(plan: Plan, wf: Workflow, a: Asked) -> Transition:
    return commands.reroute(plan, wf, to_step=a.step, actor=a.actor, reason=a.body.reason, now=a.now)


def _set_home_province(plan: Plan, wf: Workflow, a: Asked) -> Transition:
    body: HomeProvinceIn = a.body
    return commands.set_home_province(
        plan, wf, province=body.home_province, actor=a.actor, reason=body.reason, now=a.now
    )


def _cancel(plan: Plan, wf: Workflow, a: Asked) -> Transition:
    return commands.cancel(plan, wf, actor=a.actor, reason=a.body.reason, now=a.now)


COMMANDS: tuple[Command, ...] = (
    Command("/steps/{step}/complete", "complete_step", CompleteIn, ACTORS, "complete", _complete),
    Command("/steps/{step}/skip", "skip_step", ReasonIn, ACTORS, "skip", _with_reason(commands.skip)),
    Command("/steps/{step}/fail", "fail_step", ReasonIn, ACTORS, "fail", _with_reason(commands.fail)),
    Command("/steps/{step}/retry", "retry_step", ReasonIn, ACTORS, "retry", _with_reason(commands.retry)),
    Command("/reroute", "reroute", RerouteIn, ACTORS, "reroute", _reroute),
    Command("/home-province", "set_home_province", HomeProvinceIn, DESK, None, _set_home_province),
    Command("/cancel", "cancel", ReasonIn, ACTORS, "cancel", _cancel),
)
# Each command's description in the OpenAPI document.
COMMAND_DOCS = {
    "complete_step": (
        "The step's owner reports it done, with evidence (document references) and the step's data."
    ),
    "skip_step": "Skip a step that does not apply, with the reason (owner or desk; skippable steps only).",
    "fail_step": "The step's owner reports it failed; the workflow waits for a retry, re-route or cancel.",
    "retry_step": "Try a failed step again, with a fresh deadline (owner or desk).",
    "reroute": "Send the workflow back to an earlier step (a different flight); what lies between is undone.",
    "set_home_province": (
        "The desk sets or corrects the worker's home province, with a reason (on both timelines)."
    ),
    "cancel": "Cancel with a reason; every booking is released and all funding returned, visibly.",
}


async def _command(
    command: Command, request: Request, who: Principal, repatriation_id: str, step: str | None, body: Any
) -> RepatriationView:
    """Check the caller against the workflow (and the step it names), then decide and write once."""
    rt = runtime(request)
    now = rt.clock.now()
    doc = await store.get(rt.db, repatriation_id)
    if doc is None or not _may_read(who, doc):
        raise _not_found()
    if command.names == "to_step":
        step = body.to_step
    if command.authorise is not None:
        owner = "desk"  # cancel and re-route are the desk's or the host mission's, whoever owns a step
        if step is not None:
            definition = plans.load()[RepatriationKind(doc["kind"])].step(step)
            if definition is None:
                reason = f"no step {step!r} in this workflow"
                raise HTTPException(404, detail=[{"field": "step", "reason": reason}])
            owner = definition.owner
        _check(who, command.authorise, doc, owner)
    asked = Asked(body=body, actor=who.id, now=now, step=step or "")
    try:
        saved, _ = await service.act(
            rt=rt, workflow_id=repatriation_id, decide=lambda plan, wf: command.decide(plan, wf, asked)
        )
    except commands.Invalid as exc:
        raise HTTPException(422, detail=exc.errors) from exc
    except Conflict as exc:
        raise _conflict(str(exc), await store.get(rt.db, repatriation_id)) from exc
    return _out(saved, who)


def _endpoint(command: Command) -> Callable[..., Awaitable[RepatriationView]]:
    """The endpoint of one command, with the parameters FastAPI reads (and OpenAPI shows)."""
    caller = Depends(require(*command.roles))

    async def on_step(
        repatriation_id: str, step: str, body: Any, request: Request, who: Principal = caller
    ) -> RepatriationView:
        return await _command(command, request, who, repatriation_id, step, body)

    async def on_workflow(
        repatriation_id: str, body: Any, request: Request, who: Principal = caller
    ) -> RepatriationView:
        return await _command(command, request, who, repatriation_id, None, body)

    endpoint = on_step if command.names == "step" else on_workflow
    # The body model is chosen per command: give FastAPI the real class, not the closure's Any.
    endpoint.__annotations__["body"] = command.body
    endpoint.__doc__ = command.doc
    return endpoint


for _command_row in COMMANDS:
    router.add_api_route(
        f"/repatriations/{{repatriation_id}}{_command_row.path}",
        _endpoint(_command_row),
        methods=["POST"],
        name=_command_row.name,
        response_model=RepatriationView,
    )


# ---------------------------------------------------------------- evacuations


async def _evacuation(request: Request, who: Principal, evacuation_id: str) -> Doc:
    doc = await store.get(runtime(request).db, evacuation_id)
    if doc is None or doc.get("kind") != "evacuation" or not _may_read(who, doc):
        raise HTTPException(404, detail=[{"field": "evacuation_id", "reason": "no such evacuation"}])
    return doc


@router.get("/evacuations/{evacuation_id}/progress")
async def evacuation_progress(
    evacuation_id: str,
    request: Request,
    who: Principal = Depends(require(*READERS)),
    by_province: bool = False,
) -> Progress:
    """How many workers are unaccounted, located, safe, in transit, home: in total and by province."""
    doc = await _evacuation(request, who, evacuation_id)
    provinces = sorted(who.provinces) if _region_only(who) else None
    counts = await evacuation.progress(
        rt=runtime(request), evacuation=doc, provinces=provinces, by_province=by_province
    )
    return Progress.model_validate(counts)


@router.get("/evacuations/{evacuation_id}/workers")
async def evacuation_workers(
    evacuation_id: str,
    request: Request,
    who: Principal = Depends(require(*READERS)),
    status: EvacueeStatus | None = None,
    limit: int = Query(100, ge=1, le=1000),
    skip: int = Query(0, ge=0, le=100_000),
) -> list[EvacueeView]:
    """The workers of an evacuation, each with their own status."""
    await _evacuation(request, who, evacuation_id)
    provinces = sorted(who.provinces) if _region_only(who) else None
    docs = await evacuation.people(
        rt=runtime(request),
        evacuation_id=evacuation_id,
        status=status,
        provinces=provinces,
        limit=limit,
        skip=skip,
    )
    return [EvacueeView.model_validate(d) for d in docs]


@router.post("/evacuations/{evacuation_id}/workers/status")
async def move_evacuees(
    evacuation_id: str,
    body: EvacueesIn,
    request: Request,
    who: Principal = Depends(require(*DESK, "mission", "debarkation")),
) -> EvacueesMoved:
    """Report workers located, safe, in transit, home or unaccounted (mission, desk, debarkation)."""
    doc = await _evacuation(request, who, evacuation_id)
    if who.is_mission and not who.may_see_country(doc["country"]):
        raise _forbid(f"the evacuation is in {doc['country']}, outside this mission's jurisdiction")
    if doc.get("status") != "active":
        raise _conflict(f"the evacuation is {doc.get('status')}", doc)
    if body.confirmed and body.status != EvacueeStatus.UNACCOUNTED:
        raise HTTPException(
            422, detail=[{"field": "confirmed", "reason": "only a move to unaccounted can be confirmed"}]
        )
    if body.confirmed and "supervisor" not in who.roles:
        raise _forbid("only a supervisor confirms workers unaccounted")
    moved = await evacuation.move_evacuees(
        rt=runtime(request),
        evacuation_id=evacuation_id,
        worker_ids=body.worker_ids,
        status=body.status,
        actor=who.id,
        note=body.note,
        confirmed=body.confirmed,
    )
    return EvacueesMoved(requested=len(body.worker_ids), moved=moved)


# ---------------------------------------------------------------- the provinces


@router.get("/region/returns")
async def region_returns(
    request: Request,
    who: Principal = Depends(require("region", *DESK)),
    province: str | None = None,
) -> RegionReturns:
    """Returns to a region: who is arriving, when, where, and which hand-overs await its witness."""
    if "region" in who.roles and not who.roles & set(DESK):
        provinces = sorted(who.provinces if province is None else who.provinces & {province})
    else:
        if not province:
            raise HTTPException(422, detail=[{"field": "province", "reason": "required for desk users"}])
        provinces = [province]
    returns = await service.region_returns(rt=runtime(request), provinces=provinces)
    return RegionReturns.model_validate(returns)
