"""Repatriation board: live workflows by kind and step; evacuations by status and province."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from services.console.web import Ctx, signed_in

router = APIRouter()
MAX_EVACUATIONS = 10


@router.get("/repatriations", response_class=HTMLResponse)
async def board(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """Active workflows grouped by kind and current step, and each live evacuation's progress."""
    ctx.need("repatriation")
    active, evacuations = await asyncio.gather(
        ctx.get("repatriation", "/v1/repatriations", params={"status": "active", "limit": 500}),
        ctx.get(
            "repatriation",
            "/v1/repatriations",
            params={"kind": "evacuation", "status": "active", "limit": 50},
        ),
    )
    board: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in active.data or []:
        if r["kind"] == "evacuation":
            continue
        board.setdefault(r["kind"], {}).setdefault(r.get("current_step") or "-", []).append(r)
    evacs = (evacuations.data or [])[:MAX_EVACUATIONS]
    progress = await asyncio.gather(
        *(
            ctx.get(
                "repatriation",
                f"/v1/evacuations/{e['repatriation_id']}/progress",
                params={"by_province": True},
            )
            for e in evacs
        )
    )
    return ctx.render(
        "repatriations.html",
        active=active,
        board=board,
        evacuations=evacuations,
        evacs=list(zip(evacs, progress, strict=True)),
    )
