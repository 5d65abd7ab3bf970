"""registry's HTTP side: departures, workers, agencies, employers, imports, statistics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from services.registry import domain, service, store
from services.registry.models import (
    AgencyIn,
    DepartureIn,
    DepartureOut,
    DepartureUpdate,
    EmployerIn,
    ImportReport,
    NextOfKinOut,
    PartyOut,
    StatGroup,
    Statistics,
    WorkerOut,
    WorkerSearch,
)
from shared import audit
from shared.auth import Principal, require
from shared.errors import Conflict
from shared.events.registry import DepartureStatus, Scheme, Sector, SkillLevel
from shared.service import Runtime, runtime

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


def _not_found(field: str, what: str) -> HTTPException:
    return HTTPException(404, detail=[{"field": field, "reason": f"no such {what}"}])


def _departure_out(doc: dict[str, Any]) -> DepartureOut:
    return DepartureOut(departure_id=doc["_id"], **{k: v for k, v in doc.items() if k != "_id"})


def _conflict(exc: Conflict) -> HTTPException:
    current = _departure_out(exc.current).model_dump(mode="json") if exc.current else None
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
    return _departure_out(doc)


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
        raise _not_found("departure_id", "departure")
    return _departure_out(got[0])


@router.get("/departures/{departure_id}", response_model=DepartureOut, tags=["departures"])
async def get_departure(departure_id: str, request: Request, _: Reader) -> DepartureOut:
    """One departure."""
    doc = await store.get_departure(runtime(request).db, departure_id)
    if doc is None:
        raise _not_found("departure_id", "departure")
    return _departure_out(doc)


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
    query: dict[str, Any] = {}
    if province:
        query["home_province"] = domain.canonical_province(province) or province
    for key, value in (
        ("destination_country", destination),
        ("sector", sector),
        ("skill_level", skill_level),
        ("scheme", scheme),
        ("status", status_),
        ("agency_id", agency_id),
    ):
        if value is not None:
            query[key] = str(value)
    if departed_from or departed_to:
        rng = {}
        if departed_from:
            rng["$gte"] = departed_from.isoformat()
        if departed_to:
            rng["$lte"] = departed_to.isoformat()
        query["departure_date"] = rng
    docs = await store.list_departures(runtime(request).db, query, limit=limit, skip=offset)
    return [_departure_out(d) for d in docs]


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


async def _worker_out(
    rt: Runtime,
    doc: dict[str, Any],
    *,
    full: bool,
    principal: Principal,
    purpose: str | None,
    via: str,
) -> WorkerOut:
    """A worker with departures; identifiers masked unless `full` (then the read is recorded in
    the read audit first)."""
    v = rt.vault
    if full:
        shown_fields = [
            name
            for name, present in (
                ("nik", doc.get("nik_enc")),
                ("passport_number", doc.get("passport_enc")),
                ("phone", doc.get("phone_enc")),
                ("next_of_kin.phone", (doc.get("next_of_kin") or {}).get("phone")),
            )
            if present
        ]
        if shown_fields:
            await audit.record(
                rt.db,
                service="registry",
                worker_id=doc["_id"],
                actor=principal,
                fields=shown_fields,
                purpose=purpose,
                via=via,
                at=rt.clock.now(),
            )

    def shown(kind: str, field: str) -> str | None:
        token = doc.get(field)
        if not token:
            return None
        clear = v.decrypt(kind, token)
        return clear if full else domain.mask(clear)

    kin = doc.get("next_of_kin")
    if kin and kin.get("phone"):
        kin = {**kin, "phone": v.decrypt("phone", kin["phone"]) if full else "[hidden]"}
    phone = shown("phone", "phone_enc")
    return WorkerOut(
        worker_id=doc["_id"],
        full_name=doc["full_name"],
        date_of_birth=doc["date_of_birth"],
        sex=doc.get("sex"),
        nik=shown("nik", "nik_enc"),
        passport_number=shown("passport", "passport_enc"),
        home_province=doc["home_province"],
        home_regency=doc.get("home_regency"),
        phone=phone,
        next_of_kin=NextOfKinOut(**kin) if kin else None,
        departures=[_departure_out(d) for d in await store.departures_of(rt.db, doc["_id"])],
    )


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
        raise _not_found("worker_id", "worker")
    return await _worker_out(
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
        await _worker_out(
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
        raise HTTPException(
            413, detail=[{"field": "(body)", "reason": f"larger than {MAX_IMPORT_BYTES} bytes"}]
        )
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(
            413, detail=[{"field": "(body)", "reason": f"larger than {MAX_IMPORT_BYTES} bytes"}]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, detail=[{"field": "(body)", "reason": "not UTF-8 text"}]) from None
    result = await service.import_csv(rt=runtime(request), text=text)
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
        k: str(v)
        for k, v in (("sector", sector), ("skill_level", skill_level), ("destination", destination))
        if v is not None
    }
    pipeline = domain.stats_pipeline(
        by=by, provinces=provinces, filters=filters, date_from=departed_from, date_to=departed_to
    )
    rows = await store.aggregate(runtime(request).db, pipeline)
    groups = [StatGroup(key=r["_id"], count=r["count"]) for r in rows]
    return Statistics(by=by, total=sum(g.count for g in groups), provinces=provinces, groups=groups)


def _party_out(kind: Literal["agency", "employer"], doc: dict[str, Any]) -> PartyOut:
    fields = {k: v for k, v in doc.items() if k in PartyOut.model_fields}
    return PartyOut(id=doc["_id"], kind=kind, cases_open=len(doc.get("open_cases") or []), **fields)


@router.put("/agencies/{agency_id}", response_model=PartyOut, tags=["agencies and employers"])
async def put_agency(
    agency_id: Annotated[str, Path(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
    body: AgencyIn,
    request: Request,
    _: Writer,
) -> PartyOut:
    """Create or update a placement agency (flags and counts are kept)."""
    fields = body.model_dump(mode="json")
    doc = await store.put_party(runtime(request).db, store.AGENCIES, agency_id, fields)
    assert doc is not None
    return _party_out("agency", doc)


@router.post("/employers", response_model=PartyOut, status_code=201, tags=["agencies and employers"])
async def post_employer(body: EmployerIn, request: Request, _: Writer) -> PartyOut:
    """Create or update an employer; its id comes from its name and country."""
    employer_id = domain.employer_id_for(body.name, body.country)
    doc = await store.put_party(
        runtime(request).db, store.EMPLOYERS, employer_id, body.model_dump(mode="json")
    )
    assert doc is not None
    return _party_out("employer", doc)


@router.get("/agencies/{agency_id}", response_model=PartyOut, tags=["agencies and employers"])
async def get_agency(agency_id: str, request: Request, _: Reader) -> PartyOut:
    """An agency with its flags and the number of cases opened about its workers."""
    doc = await store.get_party(runtime(request).db, store.AGENCIES, agency_id)
    if doc is None:
        raise _not_found("agency_id", "agency")
    return _party_out("agency", doc)


@router.get("/employers/{employer_id}", response_model=PartyOut, tags=["agencies and employers"])
async def get_employer(employer_id: str, request: Request, _: Reader) -> PartyOut:
    """An employer with its flags."""
    doc = await store.get_party(runtime(request).db, store.EMPLOYERS, employer_id)
    if doc is None:
        raise _not_found("employer_id", "employer")
    return _party_out("employer", doc)


@router.get("/agencies", response_model=list[PartyOut], tags=["agencies and employers"])
async def list_agencies(
    request: Request, _: Reader, flagged: bool | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[PartyOut]:
    """Agencies, optionally only the flagged ones."""
    query = {} if flagged is None else {"flagged": flagged}
    return [
        _party_out("agency", d)
        for d in await store.list_parties(runtime(request).db, store.AGENCIES, query, limit)
    ]


@router.get("/employers", response_model=list[PartyOut], tags=["agencies and employers"])
async def list_employers(
    request: Request, _: Reader, flagged: bool | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[PartyOut]:
    """Employers, optionally only the flagged ones."""
    query = {} if flagged is None else {"flagged": flagged}
    return [
        _party_out("employer", d)
        for d in await store.list_parties(runtime(request).db, store.EMPLOYERS, query, limit)
    ]
