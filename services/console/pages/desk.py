"""Desk: queues in the service's order with time left, claim next, my cases, and the case page."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import labels, nav
from services.console.web import Ctx, Part, signed_in
from shared.auth import load_directory

router = APIRouter()

# What each case action sends: its form fields, in the service's body names.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "triage": ("category", "reason"),  # another category when the desk finds one (e.g. a death)
    "claim": ("reason",),
    "acknowledge": ("reason",),
    "release": ("reason",),
    "awaiting-repatriation": ("reason",),
    "resolve": ("resolution", "reason"),
    "close": ("reason",),
    "reopen": ("reason",),
    "reassign": ("assignee", "reason"),
    "notes": ("text",),
    "tags": ("tag", "reason"),
    "mission-requests": ("text",),
    "priority": ("priority", "reason"),
    "escalate": ("level", "reason"),
    "unmerge": ("reason",),
}
NUMBERS = {"priority", "level"}
OPEN = ("new", "triaged", "assigned", "in_progress", "awaiting_repatriation")


def officers() -> list[str]:
    """The desk officers a supervisor may reassign to (from the directory)."""
    directory = load_directory()
    return sorted({p.id for p in directory._by_hash.values() if "officer" in p.roles})


def _regions(queues: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Queues grouped by region, in the service's order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for q in queues:
        out.setdefault(q["region"], []).append(q)
    return list(out.items())


async def _waiting(ctx: Ctx, queue: str) -> Part:
    """A queue's waiting cases, the first hundred in claim order."""
    return await ctx.get("casework", f"/v1/queues/{queue}/cases", params={"limit": 100})


@router.get("/desk", response_class=HTMLResponse)
async def desk(ctx: Annotated[Ctx, Depends(signed_in)], queue: str | None = None) -> Response:
    """Every queue with its depth and oldest case; one queue's waiting cases in claim order."""
    ctx.need("desk")
    if queue is None:  # the first queue with cases: the listing waits for the overview
        queues = await ctx.get("casework", "/v1/queues")
        if queues.ok:
            queue = next((q["id"] for q in queues.data if q["depth"]), None)
        cases = await _waiting(ctx, queue) if queue else Part()
    else:  # both at once: the live loop reads this page every second
        queues, cases = await asyncio.gather(ctx.get("casework", "/v1/queues"), _waiting(ctx, queue))
    title = next((q["title"] for q in (queues.data or []) if q["id"] == queue), queue)
    return ctx.render(
        "desk.html",
        queues=queues,
        regions=_regions(queues.data or []),
        queue=queue,
        queue_title=title,
        cases=cases,
        may_work=nav.may(ctx.user.roles, nav.DESK_WORK),
        empty=ctx.request.query_params.get("empty"),
    )


@router.post("/desk/queues/{queue}/claim-next", response_class=HTMLResponse)
async def claim_next(queue: str, ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """Take the head of a queue and open it."""
    ctx.need("desk")
    part = await ctx.post("casework", f"/v1/queues/{queue}/claim-next")
    if part.ok:
        return RedirectResponse(f"/cases/{part.data['case_id']}?done=claim", status_code=303)
    if part.status == 404 and not part.down:
        return RedirectResponse(f"/desk?queue={queue}&empty=1", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back=f"/desk?queue={queue}")


@router.get("/desk/mine", response_class=HTMLResponse)
async def mine(ctx: Annotated[Ctx, Depends(signed_in)], officer: str | None = None) -> Response:
    """My open cases (a supervisor may look at another officer's)."""
    ctx.need("desk")
    who = officer if officer and nav.may(ctx.user.roles, nav.SUPERVISION) else ctx.user.user_id
    part = await ctx.get("casework", "/v1/cases", params={"assignee": who, "limit": 500})
    rows = [c for c in part.data or [] if c["status"] in OPEN]
    rows.sort(key=lambda c: (-int(c.get("priority") or 0), c.get("due_at") or ""))
    return ctx.render("mine.html", cases=part, rows=rows, officer=who)


REGIONS = ("asean", "east_asia", "middle_east", "europe", "other")
MAX_INBOX_CASES = 100


@router.get("/desk/notifications", response_class=HTMLResponse)
async def notifications(
    ctx: Annotated[Ctx, Depends(signed_in)], region: str | None = None, after: str | None = None
) -> Response:
    """The notification inbox: what escalation delivered, failed to deliver or withdrew, newest
    first. An officer sees those of its own cases (assigned to it, from casework); supervisors,
    administrators and auditors every region's, or one's. escalation decides what each may read."""
    ctx.need("notifications")
    oversee = nav.may(ctx.user.roles, nav.SUPERVISION)
    region = region if region in REGIONS and oversee else None
    params: dict[str, Any] = {"limit": 50}
    if after:
        params["after"] = after
    cases = Part()
    if oversee:
        if region:
            params["region"] = region
    else:
        cases = await ctx.get("casework", "/v1/cases", params={"assignee": ctx.user.user_id, "limit": 500})
        # its open cases, the latest opened 100 of them (the ids travel in the query string)
        params["case_id"] = [c["case_id"] for c in cases.data or [] if c["status"] in OPEN][-MAX_INBOX_CASES:]
    inbox = Part(data=[])
    if oversee or params["case_id"]:
        inbox = await ctx.get("escalation", "/v1/notifications/inbox", params=params)
    return ctx.render(
        "notifications.html",
        inbox=inbox,
        cases=cases,
        oversee=oversee,
        region=region,
        regions=REGIONS,
        after=after,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: str, ctx: Annotated[Ctx, Depends(signed_in)], done: str | None = None
) -> Response:
    """A case: for the desk everything with the actions this user may take; for a mission its status."""
    case = await ctx.get("casework", f"/v1/cases/{case_id}")
    if case.status == 404:
        return ctx.render("problem.html", status=404, problem="not_found")
    step_done = done if done in labels.REPATRIATION_ACTIONS else None
    if ctx.user.has("mission"):
        repatriations = Part()
        if case.ok:
            repatriations = await ctx.get("repatriation", "/v1/repatriations", params={"case_id": case_id})
        return ctx.render(
            "case_mission.html",
            case=case,
            case_id=case_id,
            repatriations=repatriations,
            step_action_labels=labels.REPATRIATION_ACTIONS,
            step_done=step_done,
        )
    case_doc = case.data or {}
    worker_id = case_doc.get("worker_id")
    calls = [
        ctx.get("registry", f"/v1/workers/{worker_id}") if worker_id else _nothing(),
        ctx.get("repatriation", "/v1/repatriations", params={"case_id": case_id}),
        ctx.get("escalation", "/v1/chains", params={"case_id": case_id}),
        *(ctx.get("intake", f"/v1/incidents/{iid}") for iid in (case_doc.get("incident_ids") or [])[:10]),
    ]
    suggested = (case_doc.get("suggested_incident_ids") or [])[:10]
    calls += [ctx.get("intake", f"/v1/incidents/{iid}") for iid in suggested]
    worker, repatriations, chains, *found = await asyncio.gather(*calls)
    incidents, suggestions = found[: len(found) - len(suggested)], found[len(found) - len(suggested) :]
    first = next((i.data for i in incidents if i.ok), None)
    return ctx.render(
        "case.html",
        case=case,
        case_id=case_id,
        c=case_doc,
        worker=worker,
        repatriations=repatriations,
        chains=chains,
        incidents=incidents,
        match=(first or {}).get("match"),
        actions=[a for a in case_doc.get("actions", []) if a in ACTION_FIELDS],
        action_labels=labels.ACTIONS,
        officers=officers(),
        done=done if done in labels.ACTIONS else None,
        step_action_labels=labels.REPATRIATION_ACTIONS,
        step_done=step_done,
        requests=sorted(case_doc.get("mission_requests") or [], key=lambda r: r.get("sent_at") or ""),
        suggestions=list(zip(suggested, suggestions, strict=True)),
        decisions=case_doc.get("suggestion_actions") or [],
        categories=list(labels.CATEGORIES),
    )


async def _nothing() -> Part:
    return Part()


@router.post("/cases/{case_id}/suggestions/{incident_id}/{decision}", response_class=HTMLResponse)
async def decide(
    case_id: str, incident_id: str, decision: str, request: Request, ctx: Annotated[Ctx, Depends(signed_in)]
) -> Response:
    """Confirm a suggested link (the two cases merge into this one) or reject it; casework decides."""
    if decision not in ("confirm", "reject"):
        return ctx.render("problem.html", status=404, problem="not_found")
    form = await request.form()
    part = await ctx.post(
        "casework",
        f"/v1/cases/{quote(case_id, safe='')}/suggestions/{quote(incident_id, safe='')}/{decision}",
        json={"reason": str(form.get("reason") or "").strip()},
    )
    if part.ok:
        return RedirectResponse(f"/cases/{case_id}?done={decision}", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back=f"/cases/{case_id}")


@router.post("/cases/{case_id}/act/{action}", response_class=HTMLResponse)
async def act(
    case_id: str, action: str, request: Request, ctx: Annotated[Ctx, Depends(signed_in)]
) -> Response:
    """One action on a case, sent to casework as the user; casework decides."""
    if action not in ACTION_FIELDS:
        return ctx.render("problem.html", status=404, problem="not_found")
    form = await request.form()
    body: dict[str, Any] = {}
    for name in ACTION_FIELDS[action]:
        value = str(form.get(name) or "").strip()
        if not value:
            continue
        body[name] = int(value) if name in NUMBERS and value.lstrip("-").isdigit() else value
    part = await ctx.post("casework", f"/v1/cases/{case_id}/{action}", json=body)
    if part.ok:
        return RedirectResponse(f"/cases/{case_id}?done={action}", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back=f"/cases/{case_id}")
