"""Read audit (UU PDP): who read a worker's identifying data or a report's narrative, when and why.

Every service that shows such data unmasked records each read in its own database
(`read_audit`: one document per read, never the value read) and lists them per worker to
auditors and administrators at `GET /v1/audit/reads?worker_id=`. The reason comes from the
caller's `X-Purpose` header ("not stated" when absent, and recorded as such).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from pymongo.asynchronous.database import AsyncDatabase

from shared.auth import Principal, require
from shared.mongo import Doc

READS = "read_audit"
AUDITORS = ("auditor", "administrator")
NOT_STATED = "not stated"

Purpose = Annotated[
    str | None,
    Header(
        alias="X-Purpose",
        max_length=200,
        description="Why the unmasked data is read (recorded in the read audit).",
        examples=["case 1f2e: calling the next of kin"],
    ),
]


class ReadRecord(BaseModel):
    """One read of identifying data or a narrative: by whom, when, why, what (never the values)."""

    worker_id: str
    service: str
    actor: str
    roles: list[str]
    at: datetime
    fields: list[str] = Field(examples=[["nik", "passport_number", "phone"]])
    purpose: str
    via: str = Field(examples=["GET /v1/workers/{worker_id}"])
    subject: str | None = Field(None, description="The incident or case read, when not the worker record.")


async def ensure_indexes(db: AsyncDatabase[Doc]) -> None:
    """Listing per worker, newest first."""
    await db[READS].create_index([("worker_id", 1), ("at", -1)])


async def record(
    db: AsyncDatabase[Doc],
    *,
    service: str,
    worker_id: str,
    actor: Principal,
    fields: list[str],
    purpose: str | None,
    via: str,
    at: datetime,
    subject: str | None = None,
) -> None:
    """Record one read (before the data is answered: no record, no data)."""
    await db[READS].insert_one(
        {
            "_id": uuid.uuid4().hex,
            "worker_id": worker_id,
            "service": service,
            "actor": actor.id,
            "roles": sorted(actor.roles),
            "at": at,
            "fields": fields,
            "purpose": (purpose or "").strip() or NOT_STATED,
            "via": via,
            "subject": subject,
        }
    )


async def reads_of(db: AsyncDatabase[Doc], worker_id: str, *, limit: int) -> list[ReadRecord]:
    """A worker's recorded reads, newest first."""
    docs = await db[READS].find({"worker_id": worker_id}).sort("at", -1).limit(limit).to_list()
    return [ReadRecord(**{k: v for k, v in d.items() if k != "_id"}) for d in docs]


router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/reads", response_model=list[ReadRecord])
async def list_reads(
    request: Request,
    _: Annotated[Principal, Depends(require(*AUDITORS))],
    worker_id: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ReadRecord]:
    """Who read this worker's identifying data (or a narrative about them), when and why."""
    return await reads_of(request.app.state.runtime.db, worker_id, limit=limit)
