"""Supervision: queue depth, oldest case, load per officer, escalation chains, rules and their dry run."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import HTMLResponse, Response

from services.console import nav
from services.console.web import Ctx, Part, signed_in

router = APIRouter()
MAX_RULE_FILE = 500_000


async def _page(
    ctx: Ctx, *, dry: Part | None = None, dry_error: str | None = None, status: int = 200
) -> Response:
    sup, chains, rules = await asyncio.gather(
        ctx.get("casework", "/v1/supervision"),
        ctx.get("escalation", "/v1/chains", params={"limit": 500}),
        ctx.get("escalation", "/v1/rules"),
    )
    pending: list[dict[str, Any]] = sorted(
        (ch for ch in chains.data or [] if ch.get("state") == "pending"),
        key=lambda ch: ch.get("due_at") or "",
    )
    return ctx.render(
        "supervision.html",
        status=status,
        sup=sup,
        chains=chains,
        pending=pending,
        rules=rules,
        dry=dry,
        dry_error=dry_error,
        may_edit=nav.may(ctx.user.roles, nav.RULE_EDITORS),
    )


@router.get("/supervision", response_class=HTMLResponse)
async def supervision(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """Queues, officers' load, pending escalation chains and the rule set in force."""
    ctx.need("supervision")
    return await _page(ctx)


@router.post("/supervision/dry-run", response_class=HTMLResponse)
async def dry_run(
    ctx: Annotated[Ctx, Depends(signed_in)],
    rules: Annotated[UploadFile, File()],
    from_offset: Annotated[int, Form(ge=0)] = 0,
) -> Response:
    """Replay the stored events through an uploaded rule file, acting on nothing; show what would change."""
    ctx.need("supervision")
    raw = await rules.read(MAX_RULE_FILE + 1)
    if len(raw) > MAX_RULE_FILE:
        return await _page(ctx, dry_error=ctx._("The rule file is larger than 500 kB."), status=413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return await _page(ctx, dry_error=ctx._("The rule file is not UTF-8 text."), status=422)
    part = await ctx.post("escalation", "/v1/rules/dry-run", json={"yaml": text, "from_offset": from_offset})
    return await _page(ctx, dry=part, status=200 if part.ok else part.status)
