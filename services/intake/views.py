"""intake's HTTP door for missions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status

from services.intake import domain, service, store
from services.intake.models import IncidentIn, IncidentOut, MissionOut, NarrativeOut
from shared import audit, paging
from shared.auth import Principal, load_directory, require
from shared.ratelimit import RateLimiter
from shared.service import runtime

router = APIRouter(prefix="/v1", tags=["incidents"])

READERS = ("mission", "officer", "supervisor", "auditor", "administrator")
Mission = Annotated[Principal, Depends(require("mission"))]
Reader = Annotated[Principal, Depends(require(*READERS))]


async def _within_rate(request: Request, principal: Mission) -> Principal:
    """The mission, if its credential is within its rate (429 with Retry-After otherwise).

    A dependency, so that it counts before the body is judged: a client looping on a bad
    request is limited too.
    """
    limiter: RateLimiter = request.app.state.limiter
    verdict = await limiter.admit(principal.id)
    if not verdict.allowed:
        reason = (
            f"more than {limiter.limit} incident reports in {limiter.window:g} s from this credential; "
            f"retry after {verdict.retry_after} s"
        )
        raise HTTPException(
            429,
            detail=[{"field": "authorization", "reason": reason}],
            headers={"Retry-After": str(verdict.retry_after)},
        )
    return principal


LimitedMission = Annotated[Principal, Depends(_within_rate)]


def _out(doc: dict[str, Any], duplicate: bool = False) -> IncidentOut:
    fields = {k: v for k, v in domain.with_offsets(doc).items() if k in IncidentOut.model_fields}
    return IncidentOut(incident_id=doc["_id"], duplicate=duplicate, **fields)


@router.post(
    "/incidents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    responses={
        200: {
            "description": "A repeat (same Idempotency-Key or mission_reference): the first incident.",
            "model": IncidentOut,
        },
        401: {"description": "No or unknown credential."},
        403: {"description": "Outside the mission's jurisdiction, or reporting as another mission."},
        413: {"description": "Body larger than 64 KiB."},
        422: {"description": "Invalid fields, each with its reason."},
        429: {
            "description": "Too many reports from this credential in the current window; "
            "retry after the seconds in Retry-After."
        },
    },
)
async def post_incident(
    body: IncidentIn,
    request: Request,
    response: Response,
    principal: LimitedMission,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string per report; a retry with the same key returns the first incident.",
            examples=["sel-2026-11-20-0001"],
        ),
    ] = None,
) -> IncidentOut:
    """Accept an incident report from a mission; the desk sees it as a case moments later."""
    try:
        doc, new = await service.submit(
            rt=runtime(request),
            submitter=service.Submitter(mission_id=principal.id, countries=principal.countries),
            report=body,
            idempotency_key=idempotency_key,
            via="http",
        )
    except service.Refused as exc:
        raise HTTPException(exc.status, detail=exc.errors) from None
    if not new:
        response.status_code = status.HTTP_200_OK
    return _out(doc, duplicate=not new)


@router.get("/incidents/{incident_id}", response_model=IncidentOut)
async def get_incident(incident_id: str, request: Request, principal: Reader) -> IncidentOut:
    """One incident; a mission sees only incidents in its jurisdiction."""
    doc = await store.get(runtime(request).db, incident_id)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "incident_id", "reason": "no such incident"}])
    if not principal.may_see_country(doc["country"]):
        raise HTTPException(
            403,
            detail=[
                {"field": "incident_id", "reason": "the incident is outside this mission's jurisdiction"}
            ],
        )
    return _out(doc)


DESK = ("officer", "supervisor", "auditor", "administrator")


@router.get("/incidents/{incident_id}/narrative", response_model=NarrativeOut)
async def get_narrative(
    incident_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(require(*DESK))],
    purpose: audit.Purpose = None,
) -> NarrativeOut:
    """What the mission wrote about the worker; each read is recorded in the read audit."""
    rt = runtime(request)
    doc = await store.get(rt.db, incident_id)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "incident_id", "reason": "no such incident"}])
    await audit.record(
        rt.db,
        service="intake",
        worker_id=(doc.get("match") or {}).get("worker_id") or doc["worker_key"],
        actor=principal,
        fields=["narrative"],
        purpose=purpose,
        via="GET /v1/incidents/{incident_id}/narrative",
        at=rt.clock.now(),
        subject=incident_id,
    )
    return NarrativeOut(incident_id=incident_id, worker_key=doc["worker_key"], narrative=doc["narrative"])


@router.get("/incidents", response_model=list[IncidentOut])
async def list_incidents(
    request: Request,
    response: Response,
    principal: Reader,
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    mission_id: Annotated[str | None, Query(max_length=64)] = None,
    non_procedural: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = 100,
    after: Annotated[
        str | None, Query(max_length=1000, description="the Link header's next-page cursor")
    ] = None,
) -> list[IncidentOut]:
    """Incidents, newest report first, a page at a time (the Link header names the next page); a
    mission sees only its jurisdiction."""
    query: dict[str, Any] = {}
    if country:
        if not principal.may_see_country(country):
            raise HTTPException(
                403, detail=[{"field": "country", "reason": "outside this mission's jurisdiction"}]
            )
        query["country"] = country
    elif principal.is_mission:
        query["country"] = {"$in": sorted(principal.countries)}
    if mission_id:
        query["mission_id"] = mission_id
    if non_procedural is not None:
        query["non_procedural"] = non_procedural
    rt = runtime(request)
    docs = await store.list_incidents(rt.db, query, limit=limit + 1, after=after, now=rt.clock.now())
    return [_out(d) for d in paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)]


@router.get("/missions", response_model=list[MissionOut], tags=["missions"])
async def missions(_: Reader) -> list[MissionOut]:
    """The mission directory: who reports for which countries (credentials are not shown)."""
    return [
        MissionOut(id=m.id, name=m.name, kind=m.kind, city=m.city, countries=sorted(m.countries))
        for m in load_directory().missions.values()
    ]
