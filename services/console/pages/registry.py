"""Registry: find a worker by NIK or passport (in the body, never the URL), CSV import, agency flags."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import HTMLResponse, Response

from services.console import nav
from services.console.web import Ctx, Part, signed_in

router = APIRouter()
MAX_IMPORT = 20 * 1024 * 1024


async def _page(ctx: Ctx, *, status: int = 200, **extra: Any) -> Response:
    agencies, employers = await asyncio.gather(
        ctx.get("registry", "/v1/agencies", params={"flagged": True, "limit": 200}),
        ctx.get("registry", "/v1/employers", params={"flagged": True, "limit": 200}),
    )
    data: dict[str, Any] = {
        "found": None,
        "imported": None,
        "searched": False,
        "import_error": None,
        "unmasked": False,
    }
    data.update(extra)
    return ctx.render(
        "registry.html",
        status=status,
        agencies=agencies,
        employers=employers,
        may_import=nav.may(ctx.user.roles, nav.REGISTRY_WRITE),
        may_unmask=nav.may(ctx.user.roles, nav.REGISTRY_WRITE),  # the registry's UNMASKERS
        **data,
    )


@router.get("/registry", response_class=HTMLResponse)
async def registry(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """Search, import and flags."""
    ctx.need("registry")
    return await _page(ctx)


@router.post("/registry/search", response_class=HTMLResponse)
async def search(
    ctx: Annotated[Ctx, Depends(signed_in)],
    nik: Annotated[str, Form(max_length=32)] = "",
    passport_number: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Find a worker by NIK or passport number; the numbers travel in bodies only."""
    ctx.need("registry")
    body = {k: v.strip() for k, v in (("nik", nik), ("passport_number", passport_number)) if v.strip()}
    if not body:
        part = Part(
            service="registry",
            status=422,
            errors=[{"field": "nik", "reason": ctx._("Enter a NIK or a passport number.")}],
        )
    else:
        part = await ctx.post("registry", "/v1/workers/search", json=body)
    return await _page(ctx, found=part, searched=True, status=200 if part.ok else part.status)


@router.post("/registry/workers/{worker_id}/unmask", response_class=HTMLResponse)
async def unmask(
    ctx: Annotated[Ctx, Depends(signed_in)],
    worker_id: Annotated[str, Path(max_length=64)],
    purpose: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Show one worker's numbers unmasked: the registry asks for a reason and records the read."""
    ctx.need("registry")
    if not purpose.strip():
        part = Part(
            service="registry",
            status=422,
            errors=[{"field": "purpose", "reason": ctx._("Say why you need the numbers unmasked.")}],
        )
    else:
        part = await ctx.get(
            "registry",
            f"/v1/workers/{quote(worker_id, safe='')}",
            params={"unmask": "true"},
            headers={"X-Purpose": purpose.strip()},
        )
        if part.ok:
            part.data = [part.data]
    status = 200 if part.ok else part.status
    return await _page(ctx, found=part, searched=True, unmasked=part.ok, status=status)


@router.post("/registry/import", response_class=HTMLResponse)
async def import_csv(
    ctx: Annotated[Ctx, Depends(signed_in)], file: Annotated[UploadFile, File()]
) -> Response:
    """Send a placement export to the registry; show what was kept and each rejected row with its reason."""
    ctx.need("registry")
    raw = await file.read(MAX_IMPORT + 1)
    if len(raw) > MAX_IMPORT:
        return await _page(ctx, import_error=ctx._("The file is larger than 20 MB."), status=413)
    part = await ctx.post("registry", "/v1/imports", content=raw, headers={"content-type": "text/csv"})
    return await _page(ctx, imported=part, status=200 if part.ok else part.status)
