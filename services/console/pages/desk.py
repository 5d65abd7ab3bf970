"""Desk: queues in the service's order with time left, claim next, my cases, and the case page."""

from __future__ import annotations

import asyncio
import hashlib
import re
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
    "triage": ("reason",),
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


# The desk's live loop asks for the page every second. Its ETag carries casework's two ETags (the
# queues, the shown queue's cases) and a digest of what else the page depends on (reader,
# language, zone, query, and the time in TAG_SECONDS steps, as "time left" moves): when casework
# answers 304 to both, so does the console, without reading or rendering anything.
TAG_SECONDS = 15
_TAG = re.compile(r'^W/"desk\.([0-9a-f]+)\.([a-z0-9_-]+)\.([0-9a-f]+)\.([0-9a-f]*)"$')
_CORE = re.compile(r'^W/"([0-9a-f]+)"$')


def _reader_digest(ctx: Ctx) -> str:
    slot = int(ctx.console.clock.now().timestamp()) // TAG_SECONDS
    user = (ctx.user.user_id, sorted(ctx.user.roles))
    what = (user, ctx.locale, ctx.fmt.zone.key, ctx.request.url.query, slot)
    return hashlib.sha256(repr(what).encode()).hexdigest()[:16]


def _page_tag(ctx: Ctx, queue: str | None, queues: Part, cases: Part) -> str | None:
    """The page's ETag, or None when a part has none (an outage, an error: never cached)."""
    q = _CORE.match(queues.etag or "")
    c = _CORE.match(cases.etag or "") if queue else None
    if q is None or (queue and c is None) or (queue and not re.fullmatch(r"[a-z0-9_-]+", queue)):
        return None
    return f'W/"desk.{_reader_digest(ctx)}.{queue or "-"}.{q[1]}.{c[1] if c else ""}"'


async def _unchanged(ctx: Ctx, given: str | None) -> bool:
    """Whether the page the reader holds (If-None-Match) is still what it would get now."""
    m = _TAG.match((given or "").strip())
    if m is None or m[1] != _reader_digest(ctx):
        return False
    queue = None if m[2] == "-" else m[2]
    asks = [ctx.get("casework", "/v1/queues", headers={"if-none-match": f'W/"{m[3]}"'})]
    if queue:
        since = {"if-none-match": f'W/"{m[4]}"'}
        asks.append(ctx.get("casework", f"/v1/queues/{queue}/cases", params={"limit": 100}, headers=since))
    return all(p.unchanged for p in await asyncio.gather(*asks))


@router.get("/desk", response_class=HTMLResponse)
async def desk(ctx: Annotated[Ctx, Depends(signed_in)], queue: str | None = None) -> Response:
    """Every queue with its depth and oldest case; one queue's waiting cases in claim order."""
    ctx.need("desk")
    given = ctx.request.headers.get("if-none-match")
    if given and await _unchanged(ctx, given):
        return Response(status_code=304, headers={"etag": given.strip(), "cache-control": "no-cache"})
    queues = await ctx.get("casework", "/v1/queues")
    if queue is None and queues.ok:
        queue = next((q["id"] for q in queues.data if q["depth"]), None)
    cases = await ctx.get("casework", f"/v1/queues/{queue}/cases", params={"limit": 100}) if queue else Part()
    title = next((q["title"] for q in (queues.data or []) if q["id"] == queue), queue)
    tag = _page_tag(ctx, queue, queues, cases)
    page = ctx.render(
        "desk.html",
        queues=queues,
        regions=_regions(queues.data or []),
        queue=queue,
        queue_title=title,
        cases=cases,
        may_work=nav.may(ctx.user.roles, nav.DESK_WORK),
        empty=ctx.request.query_params.get("empty"),
        page_tag=tag,
    )
    if tag:
        page.headers["etag"] = tag
    return page


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
    c = case.data or {}
    worker_id = c.get("worker_id")
    calls = [
        ctx.get("registry", f"/v1/workers/{worker_id}") if worker_id else _nothing(),
        ctx.get("repatriation", "/v1/repatriations", params={"case_id": case_id}),
        ctx.get("escalation", "/v1/chains", params={"case_id": case_id}),
        *(ctx.get("intake", f"/v1/incidents/{iid}") for iid in (c.get("incident_ids") or [])[:10]),
    ]
    suggested = (c.get("suggested_incident_ids") or [])[:10]
    calls += [ctx.get("intake", f"/v1/incidents/{iid}") for iid in suggested]
    worker, repatriations, chains, *found = await asyncio.gather(*calls)
    incidents, suggestions = found[: len(found) - len(suggested)], found[len(found) - len(suggested) :]
    first = next((i.data for i in incidents if i.ok), None)
    return ctx.render(
        "case.html",
        case=case,
        case_id=case_id,
        c=c,
        worker=worker,
        repatriations=repatriations,
        chains=chains,
        incidents=incidents,
        match=(first or {}).get("match"),
        actions=[a for a in c.get("actions", []) if a in ACTION_FIELDS],
        action_labels=labels.ACTIONS,
        officers=officers(),
        done=done if done in labels.ACTIONS else None,
        step_action_labels=labels.REPATRIATION_ACTIONS,
        step_done=step_done,
        requests=sorted(c.get("mission_requests") or [], key=lambda r: r.get("sent_at") or ""),
        suggestions=list(zip(suggested, suggestions, strict=True)),
        decisions=c.get("suggestion_actions") or [],
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
