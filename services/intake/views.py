"""intake's HTTP door for missions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status

from services.intake import service, store
from services.intake.models import IncidentIn, IncidentOut, MissionOut
from shared import paging
from shared.auth import Principal, load_directory, require

router = APIRouter(prefix="/v1", tags=["incidents"])

READERS = ("mission", "officer", "supervisor", "auditor", "administrator")
Mission = Annotated[Principal, Depends(require("mission"))]
Reader = Annotated[Principal, Depends(require(*READERS))]


def _deps(request: Request) -> service.Deps:
    return request.app.state.deps  # type: ignore[no-any-return]


def _out(doc: dict[str, Any], duplicate: bool = False) -> IncidentOut:
    fields = {k: v for k, v in doc.items() if k in IncidentOut.model_fields}
    return IncidentOut(incident_id=doc["_id"], duplicate=duplicate, **fields)


@router.post(
    "/incidents",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IncidentOut,
    responses={
        200: {"description": "A repeat (same Idempotency-Key or mission_reference): the first incident."},
        401: {"description": "No or unknown credential."},
        403: {"description": "Outside the mission's jurisdiction, or reporting as another mission."},
        413: {"description": "Body larger than 64 KiB."},
        422: {"description": "Invalid fields, each with its reason."},
    },
)
async def post_incident(
    body: IncidentIn,
    request: Request,
    response: Response,
    principal: Mission,
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
            deps=_deps(request),
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
    doc = await store.get(_deps(request).db, incident_id)
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
    docs = await store.list_incidents(_deps(request).db, query, limit=limit + 1, after=after)
    return [_out(d) for d in paging.page(request, response, docs, limit=limit, order=store.LIST_ORDER)]


@router.get("/missions", response_model=list[MissionOut], tags=["missions"])
async def missions(_: Reader) -> list[MissionOut]:
    """The mission directory: who reports for which countries (credentials are not shown)."""
    return [
        MissionOut(id=m.id, name=m.name, kind=m.kind, city=m.city, countries=sorted(m.countries))
        for m in load_directory().missions.values()
    ]
