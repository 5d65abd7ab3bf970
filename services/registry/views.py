"""registry's HTTP side: departures, workers, imports and statistics (agencies and employers are
in party_views); read models are built in reads, changes made in service."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from services.registry import domain, imports, reads, service, store
from services.registry.models import (
    DepartureIn,
    DepartureOut,
    DepartureUpdate,
    ImportReport,
    StatGroup,
    Statistics,
    WorkerOut,
    WorkerSearch,
)
from services.registry.reads import departure_out, worker_out
from shared import audit
from shared.auth import Principal, require
from shared.errors import Conflict
from shared.events.registry import DepartureStatus, Scheme, Sector, SkillLevel
from shared.service import runtime

router = APIRouter(prefix="/v1")

WRITERS = ("registry_operator", "administrator")
READERS = ("registry_operator", "administrator", "officer", "supervisor", "auditor")
# Who may ask to see NIK, passport and phone numbers unmasked (?unmask=true with an X-Purpose):
# the registry's own writers, who correct and import those numbers. Everyone else sees them
# masked (`************0007`), and so do these roles unless they ask.
UNMASKERS = WRITERS
Unmask = Annotated[
    bool,
    Query(
        description="Show NIK, passport and phone numbers unmasked: only for "
        + ", ".join(UNMASKERS)
        + ", with an X-Purpose header saying why; each such read is recorded in the read audit."
    ),
]
STATS = (*READERS, "region")
MAX_IMPORT_BYTES = 20 * 1024 * 1024

Writer = Annotated[Principal, Depends(require(*WRITERS))]
Reader = Annotated[Principal, Depends(require(*READERS))]


def not_found(field: str, what: str) -> HTTPException:
    """404 naming the path field whose value matches nothing."""
    return HTTPException(404, detail=[{"field": field, "reason": f"no such {what}"}])


def _too_large() -> HTTPException:
    return HTTPException(413, detail=[{"field": "(body)", "reason": f"larger than {MAX_IMPORT_BYTES} bytes"}])


def _conflict(exc: Conflict) -> HTTPException:
    current = departure_out(exc.current).model_dump(mode="json") if exc.current else None
    return HTTPException(409, detail={"reason": exc.reason, "current": current})


@router.post(
    "/departures",
    status_code=status.HTTP_201_CREATED,
    response_model=DepartureOut,
    tags=["departures"],
    responses={409: {"description": "This departure (same worker, same date) is recorded already."}},
)
async def create_departure(body: DepartureIn, request: Request, _: Writer) -> DepartureOut:
    """Record a worker and a departure; DepartureRecorded follows."""
    try:
        doc, _outcome = await service.record_departure(rt=runtime(request), data=body, upsert=False)
    except Conflict as exc:
        raise _conflict(exc) from None
    return departure_out(doc)


@router.patch(
    "/departures/{departure_id}",
    response_model=DepartureOut,
    tags=["departures"],
    responses={409: {"description": "The status change is not allowed from the current status."}},
)
async def change_departure(
    departure_id: str, body: DepartureUpdate, request: Request, _: Writer
) -> DepartureOut:
    """Change a departure (status, dates, employer...); a new version is published."""
    try:
        got = await service.update_departure(rt=runtime(request), departure_id=departure_id, data=body)
    except Conflict as exc:
        raise _conflict(exc) from None
    if got is None:
        raise not_found("departure_id", "departure")
    return departure_out(got[0])


@router.get("/departures/{departure_id}", response_model=DepartureOut, tags=["departures"])
async def get_departure(departure_id: str, request: Request, _: Reader) -> DepartureOut:
    """One departure."""
    doc = await store.get_departure(runtime(request).db, departure_id)
    if doc is None:
        raise not_found("departure_id", "departure")
    return departure_out(doc)


@router.get("/departures", response_model=list[DepartureOut], tags=["departures"])
async def list_departures(
    request: Request,
    _: Reader,
    province: Annotated[str | None, Query(max_length=60)] = None,
    destination: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    sector: Sector | None = None,
    skill_level: SkillLevel | None = None,
    scheme: Scheme | None = None,
    status_: Annotated[DepartureStatus | None, Query(alias="status")] = None,
    agency_id: Annotated[str | None, Query(max_length=64)] = None,
    departed_from: date | None = None,
    departed_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[DepartureOut]:
    """Departures with filters, newest departure date first."""
    query = reads.departure_query(
        province=province,
        filters={
            "destination_country": destination,
            "sector": sector,
            "skill_level": skill_level,
            "scheme": scheme,
            "status": status_,
            "agency_id": agency_id,
        },
        departed_from=departed_from,
        departed_to=departed_to,
    )
    docs = await store.list_departures(runtime(request).db, query, limit=limit, skip=offset)
    return [departure_out(d) for d in docs]


def _may_unmask(principal: Principal, unmask: bool, purpose: str | None) -> bool:
    """Whether to answer identifiers unmasked: asked for, by a role allowed to, with a reason
    (403 naming `unmask` for other roles, 422 naming `X-Purpose` without a reason)."""
    if not unmask:
        return False
    if not principal.roles & set(UNMASKERS):
        raise HTTPException(
            403,
            detail=[{"field": "unmask", "reason": f"requires one of the roles: {', '.join(UNMASKERS)}"}],
        )
    if not (purpose or "").strip():
        raise HTTPException(
            422,
            detail=[{"field": "X-Purpose", "reason": "say why the numbers are needed unmasked (recorded)"}],
        )
    return True


@router.get("/workers/{worker_id}", response_model=WorkerOut, tags=["workers"])
async def get_worker(
    worker_id: str,
    request: Request,
    principal: Reader,
    purpose: audit.Purpose = None,
    unmask: Unmask = False,
) -> WorkerOut:
    """A worker with their departures; numbers masked unless a registry writer asks (audited)."""
    full = _may_unmask(principal, unmask, purpose)
    rt = runtime(request)
    doc = await store.get_worker(rt.db, worker_id)
    if doc is None:
        raise not_found("worker_id", "worker")
    return await worker_out(
        rt, doc, full=full, principal=principal, purpose=purpose, via="GET /v1/workers/{worker_id}"
    )


@router.post("/workers/search", response_model=list[WorkerOut], tags=["workers"])
async def search_workers(
    body: WorkerSearch,
    request: Request,
    principal: Reader,
    purpose: audit.Purpose = None,
    unmask: Unmask = False,
) -> list[WorkerOut]:
    """Find a worker by NIK or passport number, through their keyed hash (never stored in clear);
    numbers masked unless a registry writer asks (audited)."""
    full = _may_unmask(principal, unmask, purpose)
    rt = runtime(request)
    doc = await store.worker_by_hash(
        rt.db,
        nik_hash=rt.vault.lookup_hash("nik", body.nik) if body.nik else None,
        passport_hash=rt.vault.lookup_hash("passport", body.passport_number)
        if body.passport_number
        else None,
    )
    if doc is None:
        return []
    return [
        await worker_out(
            rt, doc, full=full, principal=principal, purpose=purpose, via="POST /v1/workers/search"
        )
    ]


@router.post(
    "/imports",
    response_model=ImportReport,
    tags=["imports"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A national placement export (CSV, UTF-8, header row); see docs/registry.md.",
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "nik,passport_number,full_name,date_of_birth,sex,home_province,...\n",
                }
            },
        }
    },
)
async def import_departures(request: Request, _: Writer) -> ImportReport:
    """Import a CSV export: good rows kept, each bad row reported with its line and reason."""
    size = int(request.headers.get("content-length") or 0)
    if size > MAX_IMPORT_BYTES:
        raise _too_large()
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise _too_large()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, detail=[{"field": "(body)", "reason": "not UTF-8 text"}]) from None
    result = await imports.import_csv(rt=runtime(request), text=text)
    return ImportReport(**result.as_dict())


@router.get("/statistics/departures", response_model=Statistics, tags=["statistics"])
async def departure_statistics(
    request: Request,
    principal: Annotated[Principal, Depends(require(*STATS))],
    by: Literal["province", "sector", "skill_level", "destination", "month"] = "sector",
    province: Annotated[str | None, Query(max_length=60)] = None,
    sector: Sector | None = None,
    skill_level: SkillLevel | None = None,
    destination: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    departed_from: date | None = None,
    departed_to: date | None = None,
) -> Statistics:
    """Departures counted by province, sector, skill level, destination or month.

    Region users count only their own provinces.
    """
    provinces: list[str] | None = None
    if "region" in principal.roles and not principal.roles & set(READERS):
        provinces = sorted(principal.provinces)
    if province:
        wanted = domain.canonical_province(province) or province
        if provinces is not None and wanted not in provinces:
            raise HTTPException(
                403, detail=[{"field": "province", "reason": "outside the provinces this account may see"}]
            )
        provinces = [wanted]
    filters = {
        name: str(value)
        for name, value in (("sector", sector), ("skill_level", skill_level), ("destination", destination))
        if value is not None
    }
    pipeline = domain.stats_pipeline(
        by=by, provinces=provinces, filters=filters, date_from=departed_from, date_to=departed_to
    )
    rows = await store.aggregate(runtime(request).db, pipeline)
    groups = [StatGroup(key=r["_id"], count=r["count"]) for r in rows]
    return Statistics(by=by, total=sum(g.count for g in groups), provinces=provinces, groups=groups)
