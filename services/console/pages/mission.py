"""Mission portal: report an incident, my reports with their cases' status, the desk's requests."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import labels
from services.console.web import Ctx, Part, new_key, signed_in
from shared.vocab import Category, Severity

router = APIRouter()

CATEGORY_LABELS = labels.CATEGORIES
SEVERITY_LABELS = labels.SEVERITIES
assert set(CATEGORY_LABELS) == {c.value for c in Category}
assert set(SEVERITY_LABELS) == {s.value for s in Severity}

# The form's fields, by the service's field names (their DOM ids replace dots with dashes).
FIELDS = [
    "mission_reference",
    "country",
    "place",
    "occurred_at",
    "category",
    "severity",
    "people_affected",
    "worker.full_name",
    "worker.date_of_birth",
    "worker.passport_number",
    "worker.nik",
    "employer.name",
    "narrative",
]


def _report(form: dict[str, str], ctx: Ctx) -> tuple[dict[str, Any], dict[str, str]]:
    """The intake report a form describes, and the fields the console cannot even shape."""
    errors: dict[str, str] = {}
    report: dict[str, Any] = {}
    for name in ("mission_reference", "country", "place", "category", "severity", "narrative"):
        value = form.get(name, "").strip()
        if value:
            report[name] = value.upper() if name == "country" else value
    if "country" not in report:
        report["country"] = ""
    report.setdefault("category", "")
    report.setdefault("severity", "")
    raw = form.get("occurred_at", "").strip()
    try:
        local = datetime.fromisoformat(raw)
        report["occurred_at"] = local.replace(tzinfo=ctx.fmt.zone).isoformat()
    except ValueError:
        errors["occurred_at"] = ctx._("Enter the date and time it happened.")
    people = form.get("people_affected", "").strip() or "1"
    try:
        report["people_affected"] = int(people)
    except ValueError:
        errors["people_affected"] = ctx._("Enter a whole number.")
    worker = {
        k: form.get(f"worker.{k}", "").strip()
        for k in ("full_name", "date_of_birth", "passport_number", "nik")
        if form.get(f"worker.{k}", "").strip()
    }
    if worker:
        report["worker"] = worker
    if form.get("employer.name", "").strip():
        report["employer"] = {"name": form["employer.name"].strip()}
    return report, errors


def _form_page(
    ctx: Ctx,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    general: list[str],
    key: str,
    status: int = 200,
) -> HTMLResponse:
    return ctx.render(
        "mission_report.html",
        status=status,
        values=values,
        errors=errors,
        general=general,
        idempotency_key=key,
        categories=CATEGORY_LABELS,
        severities=SEVERITY_LABELS,
        now_local=ctx.fmt.local_input(ctx.fmt.now),
        countries=sorted(ctx.user.countries),
    )


@router.get("/mission/report", response_class=HTMLResponse)
async def report_form(ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """The incident report form, with a fresh idempotency key."""
    ctx.need("mission")
    values = {"country": sorted(ctx.user.countries)[0] if len(ctx.user.countries) == 1 else ""}
    return _form_page(ctx, values=values, errors={}, general=[], key=new_key())


@router.post("/mission/report", response_class=HTMLResponse)
async def report_send(request: Request, ctx: Annotated[Ctx, Depends(signed_in)]) -> Response:
    """Send the report to intake with the form's idempotency key; field errors go back next to fields."""
    ctx.need("mission")
    form = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    key = form.get("idempotency_key") or new_key()
    values = {name: form.get(name, "") for name in FIELDS}
    report, errors = _report(form, ctx)
    if errors:
        return _form_page(ctx, values=values, errors=errors, general=[], key=key)
    part = await ctx.post("intake", "/v1/incidents", json=report, headers={"idempotency-key": key})
    if part.ok:
        return RedirectResponse(f"/mission?reported={part.data['incident_id']}", status_code=303)
    if part.down:
        general = [
            ctx._("The intake service is not answering right now. Nothing was lost: send the form again.")
        ]
        return _form_page(ctx, values=values, errors={}, general=general, key=key, status=503)
    general = []
    for error in part.errors:
        field = str(error.get("field", ""))
        if field in FIELDS:
            errors[field] = str(error.get("reason", ""))
        else:
            general.append(f"{field}: {error.get('reason', '')}" if field else str(error.get("reason", "")))
    # The form again with the reasons next to the fields: a page shown as asked, so 200.
    return _form_page(ctx, values=values, errors=errors, general=general, key=key)


@router.get("/mission", response_class=HTMLResponse)
async def portal(
    ctx: Annotated[Ctx, Depends(signed_in)],
    reported: str | None = None,
    after: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """My reports (a page at a time) with their cases' status, and the desk's requests to answer
    (the mission's inbox at casework: every case awaiting its answer, however old)."""
    ctx.need("mission")
    incidents, inbox = await asyncio.gather(
        ctx.get(
            "intake",
            "/v1/incidents",
            params={"mission_id": ctx.user.user_id, "limit": 50, **({"after": after} if after else {})},
        ),
        ctx.get("casework", "/v1/mission-requests", params={"limit": 100}),
    )
    ids = [i["incident_id"] for i in incidents.data or []]
    cases = (
        await ctx.get("casework", "/v1/cases", params={"incident_id": ids, "limit": 100})
        if ids
        else Part(data=[])
    )
    case_of: dict[str, dict[str, Any]] = {}
    for case in cases.data or []:
        for iid in case.get("incident_ids", []):
            case_of[iid] = case
    requests: dict[str, dict[str, Any]] = {}  # the inbox's, and those on this page's cases
    for case in [*(inbox.data or []), *(cases.data or [])]:
        for mission_request in case.get("requests", []):
            requests[mission_request["request_id"]] = {**mission_request, "case": case}
    open_requests = [
        mission_request for mission_request in requests.values() if mission_request["status"] == "open"
    ]
    answered = [
        mission_request for mission_request in requests.values() if mission_request["status"] != "open"
    ]
    open_requests.sort(key=lambda mission_request: mission_request["sent_at"])
    answered.sort(key=lambda mission_request: mission_request.get("answered_at") or "", reverse=True)
    return ctx.render(
        "mission.html",
        incidents=incidents,
        cases=cases,
        inbox=inbox,
        case_of=case_of,
        open_requests=open_requests,
        answered=answered[:20],
        categories=CATEGORY_LABELS,
        reported=reported,
        first_page=after is None,
    )


@router.post("/mission/cases/{case_id}/requests/{request_id}/answer", response_class=HTMLResponse)
async def answer(
    case_id: str,
    request_id: str,
    ctx: Annotated[Ctx, Depends(signed_in)],
    text: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Answer one of the desk's requests."""
    ctx.need("mission")
    part = await ctx.post(
        "casework", f"/v1/cases/{case_id}/mission-requests/{request_id}/answer", json={"text": text}
    )
    if part.ok:
        return RedirectResponse("/mission?answered=1", status_code=303)
    return ctx.render("result.html", status=part.status, part=part, back="/mission")
