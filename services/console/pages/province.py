"""Province office: arrivals to its provinces and the hand-overs awaiting its witness."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from services.console import labels
from services.console.web import Ctx, signed_in

router = APIRouter()
MAX_FORMS = 20  # hand-overs shown with their witness form (the rest are listed)


@router.get("/province", response_class=HTMLResponse)
async def province(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """The repatriation service's region view for the user's provinces."""
    ctx.need("province")
    returns = await ctx.get("repatriation", "/v1/region/returns")
    # Each hand-over awaiting witness with what its step needs and what this user may do on it,
    # so the witness is recorded from this page (the service decides, as everywhere).
    awaiting = (returns.data or {}).get("awaiting_witness", [])[:MAX_FORMS] if returns.ok else []
    workflows = await asyncio.gather(
        *(
            ctx.get("repatriation", f"/v1/repatriations/{quote(a['repatriation_id'], safe='')}")
            for a in awaiting
        )
    )
    forms = {w.data["repatriation_id"]: w.data for w in workflows if w.ok}
    return ctx.render(
        "province.html",
        returns=returns,
        forms=forms,
        step_action_labels=labels.REPATRIATION_ACTIONS,
        done=ctx.request.query_params.get("done"),
    )
