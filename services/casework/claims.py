"""Claims on the desk's queues: claim-next (atomic head of a queue), the claim's event written
after it, and leases that run out back to their queue."""

from __future__ import annotations

import uuid

from services.casework import domain, metrics, queues, store
from services.casework.changes import (
    CASE_NS,
    CaseUpdate,
    NotFound,
    change,
    entry,
    push_timeline,
    transition_update,
)
from services.casework.domain import Action
from shared.errors import Conflict
from shared.events.casework import CaseClaimed, CaseReleased, CaseStatus
from shared.mongo import Doc, merge_updates
from shared.service import Runtime


async def claim_next(rt: Runtime, *, queue: str, officer: str) -> Doc | None:
    """Give the head of a queue to an officer, atomically; expired claims are released first.

    The claim takes the queue's head with a guarded write (store.claim_head), so two officers
    never get the same case. Its event cannot ride that same write (the case id is known only
    after it), so the write leaves a `_claim_pending` marker that a second write (or, after a
    crash, the sweeper) turns into the CaseClaimed outbox entry, with an id derived from the claim.
    """
    await release_expired(rt, queue=queue)
    now = rt.clock.now()
    upd = merge_updates(
        {
            "$set": {
                "status": CaseStatus.ASSIGNED.value,
                "assignee": officer,
                "assigned_at": now,
                "updated_at": now,
                "lease_until": now + queues.claim_lease(rt.settings),
                PENDING_CLAIM: {"actor": officer, "at": now},
            }
        },
        push_timeline(
            entry(at=now, kind="claimed", by=officer, reason=f"claimed from queue {queue}", status="assigned")
        ),
    )
    before = await store.claim_head(rt.db, queue, sorted(s.value for s in domain.WAITING), upd)
    if before is None:
        return None
    metrics.of(rt).claims.labels(queue, "next").inc()
    return await finish_claim(rt, before["_id"], previous_status=before["status"])


PENDING_CLAIM = "_claim_pending"


async def finish_claim(rt: Runtime, case_id: str, *, previous_status: str | None = None) -> Doc:
    """Turn a claim's pending marker into its CaseClaimed outbox entry, once."""
    doc = await store.get_raw(rt.db, case_id)
    if doc is None:
        raise NotFound(case_id)
    pending = doc.get(PENDING_CLAIM)
    if not pending:
        return store.strip(doc)
    at = pending["at"]
    ev = CaseClaimed(
        case_id=case_id,
        status=CaseStatus.ASSIGNED,
        previous_status=previous_status,
        actor=pending["actor"],
        assignee=pending["actor"],
        reason="claimed from queue",
        at=at,
    )
    event_id = uuid.uuid5(CASE_NS, f"{case_id}:claimed:{at.isoformat()}").hex
    after = await store.update(
        rt.db,
        {"_id": case_id, f"{PENDING_CLAIM}.at": at},
        rt.outbox.on_update({"$unset": {PENDING_CLAIM: ""}}, [rt.outbox.entry(ev, key=case_id, id=event_id)]),
    )
    rt.relay.wake(case_id)
    return after if after is not None else store.strip(doc)


async def finish_pending_claims(rt: Runtime) -> int:
    """Complete claims whose event a crashed replica did not store (sweeper)."""
    finished = 0
    for case in await store.with_field(rt.db, PENDING_CLAIM):
        await finish_claim(rt, case["_id"])
        finished += 1
    return finished


async def release_expired(rt: Runtime, *, queue: str | None = None) -> int:
    """Return every claim whose lease ran out (by the injected clock) to its queue; how many."""
    now = rt.clock.now()
    released = 0
    for case in await store.expired_claims(rt.db, now, queue=queue):

        def build(doc: Doc) -> CaseUpdate | None:
            if (
                doc["status"] != CaseStatus.ASSIGNED
                or doc.get("lease_until") is None
                or doc["lease_until"] >= now
            ):
                return None  # acknowledged or released meanwhile
            return transition_update(
                doc,
                Action.RELEASE,
                actor="system",
                now=now,
                reason=f"claim by {doc.get('assignee')} not acknowledged within its lease",
                event_cls=CaseReleased,
                kind="released",
                set_={"assignee": None},
                unset={"lease_until": ""},
                filter_={"assignee": doc.get("assignee"), "lease_until": {"$lt": now}},
                event_kw={"assignee": doc.get("assignee")},
            )

        try:
            after = await change(rt, case["_id"], build)
        except (Conflict, NotFound):
            continue  # someone else released or acknowledged it
        if after.get("status") != CaseStatus.ASSIGNED:
            released += 1
            metrics.of(rt).lease_expiries.labels(str(after.get("queue", "?"))).inc()
    return released


def count_claim(rt: Runtime, queue: str | None) -> None:
    """A desk officer claimed a case of a queue directly (not through claim-next)."""
    metrics.of(rt).claims.labels(queue or "?", "direct").inc()
