"""Province office: arrivals to its provinces and the hand-overs awaiting its witness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from services.console.web import Ctx, signed_in

router = APIRouter()


@router.get("/province", response_class=HTMLResponse)
async def province(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """The repatriation service's region view for the user's provinces."""
    ctx.need("province")
    returns = await ctx.get("repatriation", "/v1/region/returns")
    return ctx.render("province.html", returns=returns)
