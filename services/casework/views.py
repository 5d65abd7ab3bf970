"""casework's HTTP side for the protection desk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from services.casework import store
from shared.service import Runtime

router = APIRouter(prefix="/v1", tags=["cases"])


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _out(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["case_id"] = doc.pop("_id")
    return doc


@router.get("/cases/{case_id}")
async def get_case(case_id: str, request: Request) -> dict[str, Any]:
    """One case with its timeline."""
    doc = await store.get(_runtime(request).db, case_id)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "case_id", "reason": "no such case"}])
    return _out(doc)


@router.get("/cases")
async def find_cases(request: Request, incident_id: str) -> list[dict[str, Any]]:
    """The cases that hold an incident."""
    return [_out(d) for d in await store.find_by_incident(_runtime(request).db, incident_id)]
