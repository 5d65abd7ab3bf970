"""casework's HTTP side for the protection desk and, read-only, for missions.

Views only translate HTTP: roles, bodies and query parameters in; the service layer's answers
(changes, desk, claims, merge, missions, reads) out, with its exceptions as 404/403/409/422.
Both routers (cases, queues) stay in this one file: it is under ~400 lines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status

from services.casework import changes, claims, desk, merge, missions, queues, reads, store
from services.casework.changes import CaseUpdate
from services.casework.domain import Action
from services.casework.models import (
    CaseView,
    EscalateIn,
    MissionAnswerIn,
    MissionCaseView,
    MissionRequestCreated,
    MissionRequestIn,
    NoteIn,
    PriorityIn,
    QueueCase,
    QueueView,
    ReasonIn,
    ReassignIn,
    RequiredReasonIn,
    ResolveIn,
    Supervision,
    TagIn,
    TriageIn,
)
from shared import paging
from shared.auth import Principal, load_directory, require
from shared.errors import Conflict
from shared.mongo import Doc
from shared.service import Runtime, runtime

router = APIRouter(prefix="/v1", tags=["cases"])

DESK_READ = ("officer", "supervisor", "administrator", "auditor")
DESK_WORK = reads.DESK_WORK

T = TypeVar("T")


def _not_found(case_id: str) -> HTTPException:
    return HTTPException(404, detail=[{"field": "case_id", "reason": "no such case"}])


@router.post("/cases/{case_id}/suggestions/{incident_id}/confirm")
async def confirm_suggestion(
    case_id: str,
    incident_id: str,
    body: RequiredReasonIn,
    request: Request,
    who: Principal = Depends(require(*DESK_WORK)),
) -> CaseView:
    """The suggested incident is this case's person: its case is merged into this one (which
    takes its incidents; the other is closed, pointing here, its timeline kept)."""
    return await _as_http(
        case_id, merge.confirm(runtime(request), case_id, incident_id, actor=who.id, reason=body.reason)
    )


@router.post("/cases/{case_id}/suggestions/{incident_id}/reject")
async def reject_suggestion(
    case_id: str,
    incident_id: str,
    body: RequiredReasonIn,
    request: Request,
    who: Principal = Depends(require(*DESK_WORK)),
) -> CaseView:
    """The suggested incident is another person: the suggestion leaves both cases for good."""
    return await _as_http(
        case_id, merge.reject(runtime(request), case_id, incident_id, actor=who.id, reason=body.reason)
    )


@router.post("/cases/{case_id}/unmerge")
async def unmerge_case(
    case_id: str, body: RequiredReasonIn, request: Request, who: Principal = Depends(require("supervisor"))
) -> CaseView:
    """Undo a merge: this (merged) case comes back as it was, and the case it went into gives
    its incidents back."""
    return await _as_http(case_id, merge.unmerge(runtime(request), case_id, actor=who.id, reason=body.reason))


async def _outcome(case_id: str, do: Awaitable[T]) -> T:
    """A service call's outcome as HTTP: its result, or 404, 403, 422 naming the field, 409 with
    the case's current state."""
    try:
        return await do
    except changes.NotFound as exc:
        raise _not_found(case_id) from exc
    except changes.InvalidField as exc:
        raise HTTPException(422, detail=[{"field": exc.field, "reason": exc.reason}]) from exc
    except changes.Forbidden as exc:
        raise HTTPException(403, detail=[{"field": "authorization", "reason": str(exc)}]) from exc
    except Conflict as exc:
        raise HTTPException(
            409, detail=[{"field": "status", "reason": exc.reason, "current_status": exc.status}]
        ) from exc


async def _as_http(case_id: str, do: Awaitable[Doc]) -> CaseView:
    """A change of a case (or a merge decision) as HTTP: the case as the desk reads it."""
    return reads.case_view(await _outcome(case_id, do))


async def _run(rt: Runtime, case_id: str, build: Callable[[Doc], CaseUpdate | None]) -> CaseView:
    """One change of a case; its outcome as HTTP."""
    return await _as_http(case_id, changes.change(rt, case_id, build))


# --- reading cases ---------------------------------------------------------------------------------


@router.get("/cases/{case_id}")
async def get_case(
    case_id: str, request: Request, who: Principal = Depends(require(*DESK_READ, "mission"))
) -> CaseView | MissionCaseView:
    """One case with its timeline; a mission sees only the status of cases in its jurisdiction."""
    doc = await store.get(runtime(request).db, case_id)
    if doc is None or not who.may_see_country(doc["country"]):
        raise _not_found(case_id)
    if who.is_mission:
        return reads.mission_view(doc, who.id)
    return reads.desk_case_view(doc, who)


@router.get("/cases")
async def find_cases(
    request: Request,
    response: Response,
    who: Principal = Depends(require(*DESK_READ, "mission")),
    status_: str | None = Query(None, alias="status"),
    queue: str | None = None,
    assignee: str | None = None,
    worker_key: str | None = None,
    incident_ids: list[str] = Query([], alias="incident_id", max_length=100),
    limit: int = Query(100, ge=1, le=paging.MAX_LIMIT),
    after: str | None = Query(None, max_length=1000, description="the cursor of the Link header's next page"),
) -> list[CaseView] | list[MissionCaseView]:
    """Cases by incident(s), status, queue, assignee or worker, oldest first, a page at a time (the
    Link header names the next page); a mission only its jurisdiction's."""
    rt = runtime(request)
    query = reads.case_query(
        who, incident_ids=incident_ids, status=status_, queue=queue, assignee=assignee, worker_key=worker_key
    )
    if incident_ids:
        # the cases that may hold them, by `_id`: on the local FerretDB a filter on the array
        # alone reads every case (4.4 s a page of 50 reports at a national year); the filter on
        # `incident_ids` then keeps those that hold them now
        held = await store.holding_ids(rt.db, {i: changes.case_id_for(i) for i in incident_ids})
        if held is not None:
            query["_id"] = {"$in": held}
    docs = await store.find(rt.db, query, limit=limit + 1, after=after)
    docs = paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)
    if who.is_mission:
        return [reads.mission_view(d, who.id) for d in docs]
    return [reads.case_view(d) for d in docs]


# --- lifecycle --------------------------------------------------------------------------------------


def _officers() -> set[str]:
    """Ids of the directory's desk officers (the directory has no public user listing)."""
    return {p.id for p in load_directory()._by_hash.values() if "officer" in p.roles}


def _desk_action(
    action: Action, body_model: type, roles: tuple[str, ...]
) -> Callable[..., Awaitable[CaseView]]:
    """An endpoint for one lifecycle action: role check, then one conditional write."""

    async def endpoint(
        case_id: str,
        body: Any,  # replaced by body_model below
        request: Request,
        who: Principal = Depends(require(*roles)),
    ) -> CaseView:
        rt = runtime(request)
        now = rt.clock.now()
        if action == Action.REASSIGN and body.assignee not in _officers():
            raise HTTPException(422, detail=[{"field": "assignee", "reason": "not a desk officer"}])

        def build(doc: Doc) -> CaseUpdate:
            return desk.desk_update(
                doc,
                action,
                actor=who.id,
                roles=who.roles,
                now=now,
                reason=getattr(body, "reason", None),
                resolution=getattr(body, "resolution", None),
                assignee=getattr(body, "assignee", None),
                category=getattr(body, "category", None),
                lease=queues.claim_lease(rt.settings),
            )

        if action == Action.REOPEN:
            await _outcome(case_id, changes.check_reopen(rt, case_id))
        done = await _run(rt, case_id, build)
        if action == Action.CLAIM:
            claims.count_claim(rt, done.queue)
        return done

    # The body model is chosen per action: give FastAPI the real class, not the closure's name.
    endpoint.__annotations__["body"] = body_model
    endpoint.__doc__ = f"{action.value.replace('_', ' ').capitalize()} a case (roles: {', '.join(roles)})."
    return endpoint


LIFECYCLE: list[tuple[str, Action, type, tuple[str, ...]]] = [
    ("triage", Action.TRIAGE, TriageIn, DESK_WORK),
    ("claim", Action.CLAIM, ReasonIn, DESK_WORK),
    ("acknowledge", Action.ACKNOWLEDGE, ReasonIn, DESK_WORK),
    ("release", Action.RELEASE, ReasonIn, DESK_WORK),
    ("reassign", Action.REASSIGN, ReassignIn, ("supervisor",)),
    ("awaiting-repatriation", Action.AWAIT_REPATRIATION, ReasonIn, DESK_WORK),
    ("resolve", Action.RESOLVE, ResolveIn, DESK_WORK),
    ("close", Action.CLOSE, RequiredReasonIn, ("supervisor",)),
    ("reopen", Action.REOPEN, RequiredReasonIn, ("supervisor",)),
]

for _path, _action, _model, _roles in LIFECYCLE:
    router.add_api_route(
        f"/cases/{{case_id}}/{_path}",
        _desk_action(_action, _model, _roles),
        methods=["POST"],
        name=f"case_{_action.value}",
        response_model=CaseView,
    )


# --- other changes, each with its timeline entry ------------------------------------------------------


async def _simple(
    request: Request, case_id: str, make: Callable[..., CaseUpdate | None], **kw: Any
) -> CaseView:
    """One change of a case by a desk service function, make(case, now=..., **kw), as HTTP."""
    rt = runtime(request)
    now = rt.clock.now()
    return await _run(rt, case_id, lambda doc: make(doc, now=now, **kw))


@router.post("/cases/{case_id}/notes")
async def add_note(
    case_id: str, body: NoteIn, request: Request, who: Principal = Depends(require(*DESK_WORK))
) -> CaseView:
    """An internal note on the case's timeline."""
    return await _simple(request, case_id, desk.note_update, actor=who.id, text=body.text)


@router.post("/cases/{case_id}/tags")
async def add_tag(
    case_id: str, body: TagIn, request: Request, who: Principal = Depends(require(*DESK_WORK))
) -> CaseView:
    """Tag a case."""
    return await _simple(request, case_id, desk.tag_update, actor=who.id, tag=body.tag, reason=body.reason)


@router.post("/cases/{case_id}/priority")
async def change_priority(
    case_id: str, body: PriorityIn, request: Request, who: Principal = Depends(require("supervisor"))
) -> CaseView:
    """A supervisor changes a case's priority, with a reason."""
    update = desk.priority_update
    return await _simple(request, case_id, update, actor=who.id, priority=body.priority, reason=body.reason)


@router.post("/cases/{case_id}/escalate")
async def escalate(
    case_id: str, body: EscalateIn, request: Request, who: Principal = Depends(require("supervisor"))
) -> CaseView:
    """A supervisor raises a case's escalation level (never lowers it)."""
    update = desk.supervisor_escalate_update
    return await _simple(request, case_id, update, actor=who.id, level=body.level, reason=body.reason)


# --- requests to missions -----------------------------------------------------------------------------


@router.post("/cases/{case_id}/mission-requests", status_code=status.HTTP_201_CREATED)
async def request_mission(
    case_id: str, body: MissionRequestIn, request: Request, who: Principal = Depends(require(*DESK_WORK))
) -> MissionRequestCreated:
    """Ask the case's mission for something: it waits in the mission's inbox (its cases, `requests`)."""
    sent = missions.request_mission(
        runtime(request), case_id, mission_id=body.mission_id, text=body.text, actor=who.id
    )
    request_id, doc = await _outcome(case_id, sent)
    return MissionRequestCreated(request_id=request_id, case=reads.case_view(doc))


@router.post("/cases/{case_id}/mission-requests/{request_id}/answer")
async def answer_request(
    case_id: str,
    request_id: str,
    body: MissionAnswerIn,
    request: Request,
    who: Principal = Depends(require("mission")),
) -> MissionCaseView:
    """The mission answers a request the desk sent it; recorded on the case."""
    answered = missions.answer_request(
        runtime(request), case_id, request_id, mission_id=who.id, text=body.text
    )
    return reads.mission_view(await _outcome(case_id, answered), who.id)


@router.get("/mission-requests")
async def mission_inbox(
    request: Request,
    response: Response,
    who: Principal = Depends(require(*DESK_READ, "mission")),
    mission_id: str | None = Query(None, max_length=64, description="desk readers: whose inbox"),
    limit: int = Query(100, ge=1, le=paging.MAX_LIMIT),
    after: str | None = Query(None, max_length=1000, description="the Link header's next-page cursor"),
) -> list[MissionCaseView]:
    """A mission's inbox: the cases with a desk request it has not answered yet, oldest case first,
    each with that mission's requests (answered ones too). A mission reads its own."""
    if who.is_mission:
        mission_id = who.id
    elif mission_id is None:
        raise HTTPException(422, detail=[{"field": "mission_id", "reason": "required for desk users"}])
    docs = await store.find(
        runtime(request).db, {"awaiting_missions": mission_id}, limit=limit + 1, after=after
    )
    return [
        reads.mission_view(d, mission_id)
        for d in paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)
    ]


# --- queues -----------------------------------------------------------------------------------------

queues_router = APIRouter(prefix="/v1", tags=["queues"])


@queues_router.get("/queues")
async def list_queues(request: Request, who: Principal = Depends(require(*DESK_READ))) -> list[QueueView]:
    """Every desk queue with its depth and oldest waiting case."""
    return await reads.queue_views(runtime(request))


@queues_router.get("/queues/{queue}/cases")
async def queue_cases(
    queue: str,
    request: Request,
    who: Principal = Depends(require(*DESK_READ)),
    limit: int = Query(50, ge=1, le=500),
) -> list[QueueCase]:
    """The cases waiting in a queue, in claim-next order (priority, nearest deadline, age)."""
    if queue not in queues.load_queues().queues:
        raise HTTPException(404, detail=[{"field": "queue", "reason": "no such queue"}])
    return await reads.queue_cases(runtime(request), queue, limit=limit)


@queues_router.post("/queues/{queue}/claim-next")
async def claim_next(queue: str, request: Request, who: Principal = Depends(require(*DESK_WORK))) -> CaseView:
    """Take the head of a queue (priority, nearest deadline, age), atomically; 404 when empty."""
    if queue not in queues.load_queues().queues:
        raise HTTPException(404, detail=[{"field": "queue", "reason": "no such queue"}])
    doc = await claims.claim_next(runtime(request), queue=queue, officer=who.id)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "queue", "reason": "the queue is empty"}])
    return reads.case_view(doc)


@queues_router.get("/supervision")
async def supervision(
    request: Request, who: Principal = Depends(require("supervisor", "administrator", "auditor"))
) -> Supervision:
    """Queue depth, oldest waiting case, and per-officer load."""
    return await reads.supervision(runtime(request))


@queues_router.post("/queues/release-expired")
async def release_expired(
    request: Request, who: Principal = Depends(require("supervisor", "administrator"))
) -> dict[str, int]:
    """Return every claim whose lease expired to its queue now (the sweeper does it every few seconds)."""
    return {"released": await claims.release_expired(runtime(request))}
