"""Repatriation board: live workflows by kind and step; evacuations by status and province."""

from __future__ import annotations

import asyncio
from datetime import datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.console import labels, nav
from services.console.web import Ctx, NotAllowed, safe_next, signed_in

router = APIRouter()
MAX_EVACUATIONS = 10
STEP_ACTIONS = tuple(labels.STEP_ACTIONS)


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
    for workflow in active.data or []:
        if workflow["kind"] == "evacuation":
            continue
        board.setdefault(workflow["kind"], {}).setdefault(workflow.get("current_step") or "-", []).append(
            workflow
        )
    evacs = (evacuations.data or [])[:MAX_EVACUATIONS]
    progress = await asyncio.gather(
        *(
            ctx.get(
                "repatriation",
                f"/v1/evacuations/{evacuation['repatriation_id']}/progress",
                params={"by_province": True},
            )
            for evacuation in evacs
        )
    )
    return ctx.render(
        "repatriations.html",
        active=active,
        board=board,
        evacuations=evacuations,
        evacs=list(zip(evacs, progress, strict=True)),
        step_action_labels=labels.REPATRIATION_ACTIONS,
        done=ctx.request.query_params.get("done"),
    )


def completion(form: FormData, zone: tzinfo) -> dict[str, Any]:
    """A step's completion from its form: evidence one reference a line, and the data fields
    (`data.<name>`) in the types the plan asks for: true/false, a time with the reader's offset."""
    evidence = [line.strip() for line in str(form.get("evidence") or "").splitlines() if line.strip()]
    data: dict[str, Any] = {}
    for key, raw in form.multi_items():
        if not key.startswith("data.") or not isinstance(raw, str) or not raw.strip():
            continue
        name, value = key.removeprefix("data."), raw.strip()
        kind = str(form.get(f"kind.{name}") or "")
        if kind == "bool":
            data[name] = value == "true"
        elif kind == "time":
            try:  # a datetime-local field: the reader's wall time, sent with its offset
                when = datetime.fromisoformat(value)
                data[name] = (when if when.tzinfo else when.replace(tzinfo=zone)).isoformat()
            except ValueError:
                data[name] = value  # the service says what is wrong with it
        else:
            data[name] = value
    return {"evidence": evidence, "data": data}


@router.post("/repatriations/{repatriation_id}/steps/{step}/{action}", response_class=HTMLResponse)
async def step_action(
    repatriation_id: str, step: str, action: str, request: Request, ctx: Annotated[Ctx, Depends(signed_in)]
) -> Response:
    """Complete, fail, retry or skip the current step, sent to the repatriation service as the user;
    the service decides."""
    if not nav.may(ctx.user.roles, nav.REPATRIATION_ACT):
        raise NotAllowed("repatriation")
    if action not in STEP_ACTIONS:
        return ctx.render("problem.html", status=404, problem="not_found")
    form = await request.form()
    back = safe_next(str(form.get("next") or "")) or "/repatriations"
    if action == "complete":
        body = completion(form, ctx.fmt.zone)
    else:
        body = {"reason": str(form.get("reason") or "").strip()}
    path = f"/v1/repatriations/{quote(repatriation_id, safe='')}/steps/{quote(step, safe='')}/{action}"
    part = await ctx.post("repatriation", path, json=body)
    if part.ok:
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}done={action}", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back=back)


@router.post("/repatriations/{repatriation_id}/{command}", response_class=HTMLResponse)
async def workflow_command(
    repatriation_id: str, command: str, request: Request, ctx: Annotated[Ctx, Depends(signed_in)]
) -> Response:
    """Re-route the workflow back to an earlier step, cancel it, or set the worker's home province,
    with a reason; the service decides."""
    if not nav.may(ctx.user.roles, nav.REPATRIATION_ACT):
        raise NotAllowed("repatriation")
    if command not in ("reroute", "cancel", "home-province"):
        return ctx.render("problem.html", status=404, problem="not_found")
    form = await request.form()
    back = safe_next(str(form.get("next") or "")) or "/repatriations"
    body: dict[str, Any] = {"reason": str(form.get("reason") or "").strip()}
    if command == "reroute":
        body["to_step"] = str(form.get("to_step") or "")
    if command == "home-province":
        body["home_province"] = str(form.get("home_province") or "").strip()
    part = await ctx.post(
        "repatriation", f"/v1/repatriations/{quote(repatriation_id, safe='')}/{command}", json=body
    )
    if part.ok:
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}done={command}", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back=back)
