"""escalation's HTTP side: rule sets (list, load, dry run) and deadline chains."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from services.escalation import dryrun, notification_store, ruleset, store
from services.escalation.engine import Escalation
from services.escalation.models import ChainOut, DryRunIn, DryRunOut, NotificationOut, RuleSetIn, RuleSetOut
from shared import paging
from shared.auth import Principal, require
from shared.mongo import Doc
from shared.vocab import Region

router = APIRouter(prefix="/v1", tags=["escalation"])

DESK = ("officer", "supervisor", "administrator", "auditor")
RULE_EDITORS = ("supervisor", "administrator")


def _engine(request: Request) -> Escalation:
    return request.app.state.escalation  # type: ignore[no-any-return]


def _invalid(exc: ruleset.InvalidRules) -> HTTPException:
    return HTTPException(
        422,
        detail=[
            {"field": f"rules.{e.rule}.{e.field}" if e.rule else e.field, "reason": e.reason}
            for e in exc.errors
        ],
    )


def _ruleset_out(doc: Doc, *, with_rules: bool) -> RuleSetOut:
    rules = None
    if with_rules:
        rules = [
            r.model_dump(mode="json", by_alias=True, exclude_none=True)
            for r in ruleset.load_rules(doc["yaml"]).rules
        ]
    return RuleSetOut(
        version=doc["_id"],
        loaded_at=doc["loaded_at"],
        loaded_by=doc["loaded_by"],
        note=doc.get("note"),
        rules=rules,
    )


@router.get("/rules", response_model=RuleSetOut)
async def current_rules(request: Request, _: Principal = Depends(require(*DESK))) -> RuleSetOut:
    """The rule set in force, rule by rule."""
    doc = await store.latest_ruleset(_engine(request).rt.db)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "rules", "reason": "no rule set stored yet"}])
    return _ruleset_out(doc, with_rules=True)


@router.get("/rules/versions", response_model=list[RuleSetOut])
async def rule_versions(request: Request, _: Principal = Depends(require(*DESK))) -> list[RuleSetOut]:
    """Every stored rule set, newest first (without their rules)."""
    return [_ruleset_out(d, with_rules=False) for d in await store.list_rulesets(_engine(request).rt.db)]


@router.get("/rules/versions/{version}", response_model=RuleSetOut)
async def rule_version(
    version: Annotated[int, Path(ge=1, le=2**31)], request: Request, _: Principal = Depends(require(*DESK))
) -> RuleSetOut:
    """One stored rule set, rule by rule."""
    doc = await store.ruleset(_engine(request).rt.db, version)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "version", "reason": "no such rule set version"}])
    return _ruleset_out(doc, with_rules=True)


@router.post("/rules", response_model=RuleSetOut, status_code=201)
async def load_rules(
    body: RuleSetIn, request: Request, who: Principal = Depends(require(*RULE_EDITORS))
) -> RuleSetOut:
    """Load a new rule set: validated whole, stored as the next version and put in force at once.

    An invalid file is refused whole (422, each problem as rule, field and reason) and the
    rules in force keep running. Deadline chains already under way keep the stages frozen
    into them when they started: a new rule set changes only chains that start after it.
    """
    engine = _engine(request)
    try:
        version = await engine.load(body.yaml, by=who.id, note=body.note)
    except ruleset.InvalidRules as exc:
        raise _invalid(exc) from None
    doc = await store.ruleset(engine.rt.db, version)
    assert doc is not None
    return _ruleset_out(doc, with_rules=True)


@router.post("/rules/dry-run", response_model=DryRunOut)
async def dry_run(
    body: DryRunIn, request: Request, _: Principal = Depends(require(*RULE_EDITORS))
) -> DryRunOut:
    """Replay stored events (from an offset or a time) through a candidate rule file, acting on nothing.

    Reports what the candidate would have fired against what the rules in force would fire on
    the same events, with a simulated clock that follows the events' times.
    """
    engine = _engine(request)
    try:
        candidate = ruleset.load_rules(body.yaml)
    except ruleset.InvalidRules as exc:
        raise _invalid(exc) from None
    events = await dryrun.read_events(
        engine.rt.settings, from_offset=body.from_offset, from_time=body.from_time, until=body.until
    )
    out = dryrun.report(candidate, engine.rules, events, until=body.until)
    return DryRunOut(live_version=engine.version, **out)


def _chain_out(doc: Doc, firings: list[Doc]) -> ChainOut:
    return ChainOut(
        chain_id=doc["_id"],
        **{
            k: doc.get(k)
            for k in ("rule_id", "rule_version", "subject", "state", "slot", "slots", "started_at")
        },
        due_at=doc.get("due_at") if doc.get("state") == "pending" else None,
        closed_at=doc.get("closed_at"),
        closed_by=doc.get("closed_by"),
        stages=doc["stages"],
        until=doc["until"],
        firings=[_firing_out(f) for f in firings],
    )


def _firing_out(decision: Doc) -> dict[str, Any]:
    keep = ("stage", "outcome", "fired_at", "due_at", "actions", "action_ids", "skipped", "by")
    return {k: decision[k] for k in keep if k in decision}


@router.get("/chains", response_model=list[ChainOut])
async def find_chains(
    request: Request,
    case_id: str | None = None,
    limit: int = 100,
    _: Principal = Depends(require(*DESK)),
) -> list[ChainOut]:
    """Deadline chains (live and ended), optionally of one case, with what each fired."""
    db = _engine(request).rt.db
    subject = f"case:{case_id}" if case_id else None
    docs = await store.find_chains(db, subject=subject, limit=max(1, min(limit, 500)))
    return [_chain_out(d, await store.decisions_of(db, d["_id"])) for d in docs]


@router.get("/chains/{chain_id}", response_model=ChainOut)
async def get_chain(chain_id: str, request: Request, _: Principal = Depends(require(*DESK))) -> ChainOut:
    """One deadline chain with its frozen stages and what it fired."""
    db = _engine(request).rt.db
    doc = await store.get_chain(db, chain_id)
    if doc is None:
        raise HTTPException(404, detail=[{"field": "chain_id", "reason": "no such chain"}])
    return _chain_out(doc, await store.decisions_of(db, chain_id))


@router.get("/notifications", response_model=list[NotificationOut])
async def case_notifications(
    request: Request,
    case_id: Annotated[str, Query(min_length=1, max_length=200)],
    _: Principal = Depends(require(*DESK)),
) -> list[NotificationOut]:
    """A case's notifications (notify and refer actions, one per contact) and their delivery state."""
    db = _engine(request).rt.db
    out = []
    for doc in await notification_store.notifications_of(db, case_id):
        live = await notification_store.delivery(db, doc["_id"]) if doc.get("state") == "pending" else None
        live_fields = ("state", "attempts", "finished_at", "last_error")
        now: Doc = {k: live[k] for k in live_fields if live and k in live}
        out.append(_notification_out({**doc, **now}))
    return out


def _notification_out(doc: Doc) -> NotificationOut:
    return NotificationOut(
        notification_id=doc["_id"],
        **{k: doc.get(k) for k in NotificationOut.model_fields if k != "notification_id"},
    )


@router.get("/notifications/inbox", response_model=list[NotificationOut])
async def notification_inbox(
    request: Request,
    response: Response,
    who: Principal = Depends(require(*DESK)),
    region: Annotated[
        Region | None, Query(description="one desk region (supervisors, administrators, auditors)")
    ] = None,
    case_ids: Annotated[
        list[str] | None,
        Query(
            alias="case_id", max_length=paging.MAX_LIMIT, description="these cases only (an officer's own)"
        ),
    ] = None,
    state: Annotated[list[Literal["sent", "failed", "withdrawn"]] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = 50,
    after: Annotated[
        str | None, Query(max_length=1000, description="the Link header's next-page cursor")
    ] = None,
) -> list[NotificationOut]:
    """The notification inbox: notifications delivered, failed or withdrawn, newest first, a page at
    a time (the Link header names the next). Supervisors, administrators and auditors read every
    region's, or one's; an officer reads those of named cases (its own, which the console looks up
    at casework): without `case_id` an officer's inbox is refused."""
    if case_ids is None and not who.roles & {"supervisor", "administrator", "auditor"}:
        raise HTTPException(
            422, detail=[{"field": "case_id", "reason": "an officer's inbox names its cases"}]
        )
    docs = await notification_store.inbox(
        _engine(request).rt.db,
        region=region.value if region else None,
        case_ids=case_ids,
        states=list(state or notification_store.FINISHED),
        limit=limit + 1,
        after=after,
        now=_engine(request).rt.clock.now(),
    )
    return [
        _notification_out(d)
        for d in paging.page(request, response, docs, limit=limit, order=notification_store.INBOX_ORDER)
    ]
