"""casework's read models: a stored case as the desk's and a mission's answer, the case lists,
queue depths and the supervisor's overview. No writes."""

from __future__ import annotations

from services.casework import domain, queue_cache, queues, store
from services.casework.models import (
    CaseView,
    MissionCaseView,
    MissionRequestView,
    OfficerLoad,
    QueueCase,
    QueueView,
    Supervision,
)
from shared.auth import Principal
from shared.mongo import Doc
from shared.service import Runtime

DESK_WORK = ("officer", "supervisor")


def case_view(doc: Doc) -> CaseView:
    """A stored case as its declared answer: the model names what leaves the store, so storage
    keys (open_key, join_key, merged_previous) and bookkeeping never do."""
    fields = {k: v for k, v in doc.items() if k in CaseView.model_fields}
    fields["case_id"] = doc["_id"]
    fields["mission_requests"] = list((doc.get("mission_requests") or {}).values())
    return CaseView.model_validate(fields)


def desk_case_view(doc: Doc, who: Principal) -> CaseView:
    """A case as a desk user sees it, with the actions (and suggestion decisions) open to them now."""
    out = case_view(doc)
    out.actions = domain.available_actions(
        status=doc["status"],
        assignee=doc.get("assignee"),
        escalation_level=int(doc.get("escalation_level") or 0),
        actor=who.id,
        roles=who.roles,
    )
    if doc.get("merged_into") and "supervisor" in who.roles:
        out.actions.append("unmerge")
    may_decide = bool(who.roles & set(DESK_WORK)) and domain.is_open(doc["status"])
    out.suggestion_actions = ["confirm", "reject"] if may_decide and doc.get("suggested_incident_ids") else []
    return out


def mission_view(doc: Doc, mission_id: str) -> MissionCaseView:
    """Status and this mission's own requests; no timeline, no notes, no assignee."""
    requests = [
        MissionRequestView(**{k: r.get(k) for k in MissionRequestView.model_fields})
        for r in (doc.get("mission_requests") or {}).values()
        if r.get("mission_id") == mission_id
    ]
    return MissionCaseView(
        case_id=doc["_id"],
        status=doc["status"],
        country=doc["country"],
        category=doc["category"],
        opened_at=doc["opened_at"],
        updated_at=doc.get("updated_at"),
        incident_ids=doc.get("incident_ids") or [],
        requests=requests,
    )


def case_query(
    who: Principal,
    *,
    incident_ids: list[str],
    status: str | None,
    queue: str | None,
    assignee: str | None,
    worker_key: str | None,
) -> Doc:
    """The filter of a case list: the fields asked for; a mission only its jurisdiction's cases."""
    query: Doc = {}
    for name, value in (
        ("incident_ids", {"$in": incident_ids} if incident_ids else None),
        ("status", status),
        ("queue", queue),
        ("assignee", assignee),
        ("worker_keys", worker_key),
    ):
        if value is not None:
            query[name] = value
    if who.is_mission:
        query["country"] = {"$in": sorted(who.countries)}
    return query


async def queue_views(rt: Runtime) -> list[QueueView]:
    """Depth and oldest waiting case of every queue, from the waiting entries (store.WAITING: kept
    from the case events, a fraction of a second behind the cases). Per queue, kept in this
    replica until its change stamp moves (queue_cache): the stamps are read first, then one read
    of the entries of the queues whose stamp moved (all of them on a cold start)."""
    listed = queues.load_queues().queues
    cache = queue_cache.of(rt)
    now = await store.stamps(rt.db)
    summary: dict[str, tuple[int, Doc | None]] = {}
    moved = []
    for q in listed:
        kept = cache.get(("overview", q), now.get(q))
        if kept is None:
            moved.append(q)
        else:
            summary[q] = kept
    if moved:
        fresh = await store.waiting_summary(rt.db, None if len(moved) == len(listed) else moved)
        for q in moved:
            summary[q] = fresh.get(q, (0, None))
            cache.put(("overview", q), now.get(q), summary[q])
    out = []
    for queue in listed.values():
        depth, oldest = summary[queue.id]
        out.append(
            QueueView(
                id=queue.id,
                title=queue.title,
                region=queue.region.value,
                kind=queue.kind.value,
                depth=depth,
                oldest_case_id=oldest["_id"] if oldest else None,
                oldest_opened_at=oldest["opened_at"] if oldest else None,
            )
        )
    return out


async def queue_cases(rt: Runtime, queue: str, *, limit: int) -> list[QueueCase]:
    """The cases waiting in a queue, in claim-next order, from its waiting entries (which hold
    every field of the answer; claim-next itself takes from the cases). Kept in this replica until
    the queue's change stamp moves (queue_cache); a kept longer listing answers a shorter one."""
    cache = queue_cache.of(rt)
    stamp = await store.stamp(rt.db, queue)
    kept = cache.get(("cases", queue), stamp)
    if kept is not None:
        read_limit, cases = kept
        if read_limit >= limit or len(cases) < read_limit:  # covers this limit, or is the whole queue
            return cases[:limit]  # type: ignore[no-any-return]
    docs = await store.waiting_in(rt.db, queue, limit=limit)
    cases = [
        QueueCase(case_id=d["_id"], **{k: d.get(k) for k in QueueCase.model_fields if k != "case_id"})
        for d in docs
    ]
    cache.put(("cases", queue), stamp, (limit, cases))
    return cases


async def supervision(rt: Runtime) -> Supervision:
    """Queue depth, oldest waiting case, and per-officer load.

    The queues first: a claim's load entry is written before its case leaves the queue
    (handlers.follow_case), so an answer whose queue no longer shows a claimed case counts it
    in its officer's load."""
    queue_view = await queue_views(rt)
    loads: dict[str, OfficerLoad] = {}
    for row in await store.load_by_assignee(rt.db, sorted(s.value for s in domain.WORKED)):
        officer, st = row["_id"]["assignee"], row["_id"]["status"]
        load = loads.setdefault(officer, OfficerLoad(officer=officer))
        setattr(load, st, int(row["n"]))
    return Supervision(queues=queue_view, officers=sorted(loads.values(), key=lambda x: x.officer))
