"""registry's HTTP side for placement agencies and employers (their flags and case counts)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from services.registry import domain, store
from services.registry.models import AgencyIn, EmployerIn, PartyOut
from services.registry.reads import party_out
from services.registry.views import Reader, Writer, not_found
from shared.service import runtime

router = APIRouter(prefix="/v1", tags=["agencies and employers"])

Kind = Literal["agency", "employer"]
_COLLECTION = {"agency": store.AGENCIES, "employer": store.EMPLOYERS}
Limit = Annotated[int, Query(ge=1, le=500)]


async def _put(request: Request, kind: Kind, party_id: str, fields: dict[str, object]) -> PartyOut:
    doc = await store.put_party(runtime(request).db, _COLLECTION[kind], party_id, fields)
    assert doc is not None
    return party_out(kind, doc)


async def _get(request: Request, kind: Kind, party_id: str) -> PartyOut:
    """One party, or 404 naming `agency_id` / `employer_id`."""
    doc = await store.get_party(runtime(request).db, _COLLECTION[kind], party_id)
    if doc is None:
        raise not_found(f"{kind}_id", kind)
    return party_out(kind, doc)


async def _list(request: Request, kind: Kind, flagged: bool | None, limit: int) -> list[PartyOut]:
    query = {} if flagged is None else {"flagged": flagged}
    docs = await store.list_parties(runtime(request).db, _COLLECTION[kind], query, limit)
    return [party_out(kind, d) for d in docs]


@router.put("/agencies/{agency_id}", response_model=PartyOut)
async def put_agency(
    agency_id: Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
    body: AgencyIn,
    request: Request,
    _: Writer,
) -> PartyOut:
    """Create or update a placement agency (flags and counts are kept)."""
    return await _put(request, "agency", agency_id, body.model_dump(mode="json"))


@router.post("/employers", response_model=PartyOut, status_code=201)
async def post_employer(body: EmployerIn, request: Request, _: Writer) -> PartyOut:
    """Create or update an employer; its id comes from its name and country."""
    employer_id = domain.employer_id_for(body.name, body.country)
    return await _put(request, "employer", employer_id, body.model_dump(mode="json"))


@router.get("/agencies/{agency_id}", response_model=PartyOut)
async def get_agency(agency_id: str, request: Request, _: Reader) -> PartyOut:
    """An agency with its flags and the number of cases opened about its workers."""
    return await _get(request, "agency", agency_id)


@router.get("/employers/{employer_id}", response_model=PartyOut)
async def get_employer(employer_id: str, request: Request, _: Reader) -> PartyOut:
    """An employer with its flags."""
    return await _get(request, "employer", employer_id)


@router.get("/agencies", response_model=list[PartyOut])
async def list_agencies(
    request: Request, _: Reader, flagged: bool | None = None, limit: Limit = 100
) -> list[PartyOut]:
    """Agencies, optionally only the flagged ones."""
    return await _list(request, "agency", flagged, limit)


@router.get("/employers", response_model=list[PartyOut])
async def list_employers(
    request: Request, _: Reader, flagged: bool | None = None, limit: Limit = 100
) -> list[PartyOut]:
    """Employers, optionally only the flagged ones."""
    return await _list(request, "employer", flagged, limit)
