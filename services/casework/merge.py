"""Suggested links decided by the desk: reject one, or confirm it and merge the two cases; a
supervisor may undo a merge.

A name alone identifies nobody, so intake only *suggests* that two reports are one person
(`suggested_incident_ids` on both cases). A desk officer decides:
- reject: the suggestion leaves both cases, is remembered (`rejected_suggestions`) so a
  redelivered report does not bring it back, and both timelines say who decided and why;
- confirm: the case holding the suggested incident (the absorbed case) is merged into this one
  (the survivor): the survivor takes its incidents and worker keys, the graver severity, the
  higher priority and the nearer deadline; the absorbed case is closed with `merged_into`
  naming the survivor and keeps its own timeline; both timelines record the merge;
- unmerge (supervisor): the absorbed case is restored to the state and key it had, and the
  survivor gives its incidents back.

Two documents change and there are no multi-document transactions, so the order is chosen so a
crash between the writes can duplicate but never lose: a merge writes the survivor first (the
incidents are then in both cases, never in neither; noted as going into it before, so that the
case list by incident finds it by `_id`: store.HOLDERS), an unmerge restores the absorbed case
first. Each write is guarded so a retry of the same request completes what a crash left half
done and changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.casework import domain, placement, store
from services.casework.changes import (
    CaseUpdate,
    NotFound,
    case_change,
    change,
    entry,
    push_timeline,
)
from shared.envelope import Event
from shared.errors import Conflict
from shared.events.casework import CaseClosed, CaseMerged, CaseReopened
from shared.mongo import Doc, merge_updates
from shared.service import Runtime
from shared.vocab import SEVERITY_RANK, Severity

# On a case an unmerge has reopened and whose survivor has not yet given its incidents back: the
# survivor's id. A retry of the unmerge completes it; no merge closes the case meanwhile.
UNMERGING = "unmerging_from"


async def _holder(rt: Runtime, incident_id: str, *, besides: str) -> Doc:
    """The case holding an incident, other than `besides` (after a merge both list it)."""
    holder = placement.live_holder(await placement.cases_holding(rt, [incident_id]), besides=besides)
    if holder is None:
        raise NotFound(incident_id)
    return holder


def _suggested(doc: Doc, incident_id: str) -> None:
    if incident_id not in (doc.get("suggested_incident_ids") or []):
        raise Conflict(f"incident {incident_id} is not a suggested link of this case", status=doc["status"])


def _forget(
    doc: Doc, incident_ids: list[str], *, actor: str, now: datetime, reason: str, other: str
) -> CaseUpdate | None:
    """Take the given incidents out of doc's suggestions, remembered as rejected."""
    gone = [one for one in incident_ids if one in (doc.get("suggested_incident_ids") or [])]
    if not gone:
        return None
    return CaseUpdate(
        merge_updates(
            {
                "$pullAll": {"suggested_incident_ids": gone},
                "$addToSet": {"rejected_suggestions": {"$each": gone}},
                "$set": {"updated_at": now},
            },
            push_timeline(
                *(
                    entry(
                        at=now,
                        kind="suggestion_rejected",
                        by=actor,
                        reason=reason,
                        incident_id=rejected,
                        case_id=other,
                    )
                    for rejected in gone
                )
            ),
        )
    )


async def reject(rt: Runtime, case_id: str, incident_id: str, *, actor: str, reason: str) -> Doc:
    """The desk says the suggested incident is another person: the suggestion leaves both cases."""
    now = rt.clock.now()
    doc = await store.get_raw(rt.db, case_id)
    if doc is None:
        raise NotFound(case_id)
    _suggested(doc, incident_id)
    other = await _holder(rt, incident_id, besides=case_id)
    after = await change(
        rt,
        case_id,
        lambda doc: _forget(doc, [incident_id], actor=actor, now=now, reason=reason, other=other["_id"]),
        retries=3,
    )
    mine = list(doc.get("incident_ids") or [])
    await change(
        rt,
        other["_id"],
        lambda doc: _forget(doc, mine, actor=actor, now=now, reason=reason, other=case_id),
        retries=3,
    )
    return after


def _graver(a: str, b: str) -> str:
    return max(Severity(a), Severity(b), key=lambda s: SEVERITY_RANK[s]).value


def _at(doc: Doc) -> Doc:
    """A write's guard: the case is still at the version it was read at (every case write counts)."""
    version = store.version_of(doc)
    return {store.VERSION: version} if version else {store.VERSION: {"$exists": False}}


def _mergeable(doc: Doc) -> None:
    """Refuse (409) a case that cannot take part in a merge now: not open, or being unmerged."""
    if not domain.is_open(doc["status"]) or doc.get("merged_into"):
        raise Conflict(f"case {doc['_id']} is {doc['status']}: only open cases merge", status=doc["status"])
    _not_unmerging(doc)


def _not_unmerging(doc: Doc) -> None:
    if doc.get(UNMERGING):
        raise Conflict(
            f"case {doc['_id']} is being unmerged: try again once it is done", status=doc["status"]
        )


class _Crossed(Exception):
    """The absorbed case took the survivor's incidents too (a confirmation from its side at once)."""


def _take(absorbed: Doc, *, actor: str, now: datetime, reason: str) -> Callable[[Doc], CaseUpdate | None]:
    """The survivor's write (for `change`): it takes the absorbed case's incidents it lacks."""

    def take(doc: Doc) -> CaseUpdate | None:
        _mergeable(doc)  # (merged into another case meanwhile: two officers confirming at once)
        # the absorbed case's incidents this case lacks: all of them the first time; on a retry,
        # any that joined the absorbed case after the first try (its close then refused)
        moved = [i for i in absorbed.get("incident_ids") or [] if i not in (doc.get("incident_ids") or [])]
        if not moved and absorbed["_id"] in (doc.get("merged_from") or []):
            return None  # done before (a retry)
        events: list[Event] = [
            case_change(
                CaseMerged,
                doc,
                actor=actor,
                at=now,
                incident_id=moved_id,
                category=absorbed["category"],
                severity=absorbed["severity"],
                reason=f"confirmed link, merged from {absorbed['_id']}: {reason}",
            )
            for moved_id in moved
        ]
        update = merge_updates(
            {
                "$addToSet": {
                    "incident_ids": {"$each": moved},
                    "worker_keys": {"$each": list(absorbed.get("worker_keys") or [])},
                    "merged_from": absorbed["_id"],
                },
                "$pullAll": {"suggested_incident_ids": moved},
                "$set": {"updated_at": now, "severity": _graver(doc["severity"], absorbed["severity"])},
                "$max": {"priority": absorbed.get("priority", 0)},
            },
            {"$min": {"due_at": absorbed["due_at"]}} if absorbed.get("due_at") else {},
            push_timeline(
                entry(
                    at=now,
                    kind="merged_from",
                    by=actor,
                    reason=reason,
                    case_id=absorbed["_id"],
                    incident_ids=moved,
                )
            ),
        )
        # at the version read: two identical confirmations at once emit its events once
        return CaseUpdate(update, events, _at(doc))

    return take


async def confirm(rt: Runtime, case_id: str, incident_id: str, *, actor: str, reason: str) -> Doc:
    """The desk says the suggested incident is this case's person: merge its case into this one.

    Longer than most: the two writes (survivor first, then the absorbed case) are kept side by
    side, since their order is what makes a crash between them safe (see the module docstring)."""
    now = rt.clock.now()
    survivor = await store.get_raw(rt.db, case_id)
    if survivor is None:
        raise NotFound(case_id)
    absorbed = await _holder(rt, incident_id, besides=case_id)
    again = absorbed["_id"] != case_id and absorbed["_id"] in (survivor.get("merged_from") or [])
    if not again:
        _suggested(survivor, incident_id)
        if absorbed["_id"] == case_id:
            raise Conflict("the incident is in this case already", status=survivor["status"])
        _mergeable(survivor)
        _mergeable(absorbed)
    _not_unmerging(absorbed)
    after = survivor
    if not again or (domain.is_open(absorbed["status"]) and not absorbed.get("merged_into")):
        await store.note_holders(rt.db, list(absorbed.get("incident_ids") or []), case_id)  # _take's
        after = await change(rt, case_id, _take(absorbed, actor=actor, now=now, reason=reason), retries=3)
    return await _close_absorbed(rt, after, absorbed["_id"], actor=actor, now=now, reason=reason)


async def _close_absorbed(
    rt: Runtime, survivor: Doc, absorbed_id: str, *, actor: str, now: datetime, reason: str
) -> Doc:
    """Close the absorbed case into the survivor (as read after taking its incidents), unless that
    would leave an incident in closed cases alone: the close is written only over the version of
    the absorbed case it was decided on, and refused (Conflict) when the absorbed case holds an
    incident the survivor lacks (one joined it meanwhile: the same confirmation again moves it
    first) or took the survivor's own incidents (two officers confirmed the link from both sides
    at once: the case of the smaller `_id` survives, whichever request gets here, and the request
    that asked for the other way round is refused once it has closed the other case into it)."""

    live = await store.get_raw(rt.db, survivor["_id"])  # as it is now: still open, holding what?

    def close(doc: Doc) -> CaseUpdate | None:
        if doc.get("merged_into"):
            return None  # done before (a retry)
        _mergeable(doc)
        if survivor["_id"] in (doc.get("merged_from") or []) and doc["_id"] < survivor["_id"]:
            raise _Crossed
        if live is None:
            raise NotFound(survivor["_id"])
        _mergeable(live)  # closed or merged on meanwhile (a ring of confirmations at once): refused
        kept = set(live.get("incident_ids") or [])
        if any(i not in kept for i in doc.get("incident_ids") or []):
            raise Conflict(
                f"case {doc['_id']} has taken another incident while being merged: confirm again",
                status=doc["status"],
            )
        closed = case_change(
            CaseClosed,
            doc,
            status="closed",
            actor=actor,
            at=now,
            reason=f"merged into {survivor['_id']}: {reason}",
        )
        return CaseUpdate(
            merge_updates(
                {
                    "$set": {
                        "status": "closed",
                        "merged_into": survivor["_id"],
                        "merged_previous": {"status": doc["status"], "open_key": doc["open_key"]},
                        "open_key": domain.closed_key(doc["_id"]),
                        "updated_at": now,
                    },
                    "$pullAll": {"suggested_incident_ids": list(survivor.get("incident_ids") or [])},
                },
                push_timeline(
                    entry(at=now, kind="merged_into", by=actor, reason=reason, case_id=survivor["_id"])
                ),
            ),
            [closed],
            _at(doc),
        )

    try:
        await change(rt, absorbed_id, close, retries=3)
    except _Crossed:
        # Finish the other side's merge (its survivor is this absorbed case), then refuse this one.
        loser = await store.get_raw(rt.db, survivor["_id"])
        assert loser is not None
        await store.note_holders(rt.db, list(loser.get("incident_ids") or []), absorbed_id)  # _take's
        winner = await change(rt, absorbed_id, _take(loser, actor=actor, now=now, reason=reason), retries=3)
        await _close_absorbed(rt, winner, survivor["_id"], actor=actor, now=now, reason=reason)
        raise Conflict(
            f"cases {absorbed_id} and {survivor['_id']} were confirmed into each other at the same time: "
            f"{survivor['_id']} is closed into {absorbed_id}, which holds every incident of both",
            status="closed",
        ) from None
    current = await store.get(rt.db, survivor["_id"])
    assert current is not None
    return current


async def unmerge(rt: Runtime, case_id: str, *, actor: str, reason: str) -> Doc:
    """A supervisor undoes a merge: the absorbed case (case_id) comes back as it was."""
    now = rt.clock.now()
    absorbed = await store.get_raw(rt.db, case_id)
    if absorbed is None:
        raise NotFound(case_id)
    survivor_id = absorbed.get("merged_into") or absorbed.get(UNMERGING)  # the latter: a retry
    if not survivor_id:
        raise Conflict("this case was not merged into another", status=absorbed["status"])
    if survivor_id in (absorbed.get("merged_from") or []):
        # each took the other's incidents (confirmed from both sides at once): giving back this
        # case's incidents would take the survivor's own with them
        raise Conflict(
            f"this case and case {survivor_id} were merged into each other at the same time: "
            "it cannot be unmerged",
            status=absorbed["status"],
        )
    survivor = await store.get_raw(rt.db, survivor_id)
    went_on = survivor is not None and case_id in (survivor.get("merged_from") or [])
    if went_on and survivor is not None and survivor.get("merged_into"):
        # Its incidents went on with the survivor into a third case: giving them back from the
        # survivor alone would leave them in that case too. Undo the later merge first.
        raise Conflict(
            f"case {survivor_id}, which this case was merged into, has since been merged into "
            f"{survivor['merged_into']}: unmerge {survivor_id} first",
            status=absorbed["status"],
        )
    moved = list(absorbed.get("incident_ids") or [])

    def restore(doc: Doc) -> CaseUpdate | None:
        if not doc.get("merged_into"):
            return None
        previous: dict[str, Any] = doc.get("merged_previous") or {}
        reopened = case_change(
            CaseReopened,
            doc,
            status=previous.get("status", "new"),
            actor=actor,
            at=now,
            reason=f"unmerged: {reason}",
        )
        return CaseUpdate(
            merge_updates(
                {
                    "$set": {
                        "status": previous.get("status", "new"),
                        "open_key": previous.get("open_key") or doc.get("join_key") or doc["open_key"],
                        "updated_at": now,
                        UNMERGING: survivor_id,
                    },
                    "$unset": {"merged_into": "", "merged_previous": ""},
                },
                push_timeline(entry(at=now, kind="unmerged", by=actor, reason=reason, case_id=survivor_id)),
            ),
            [reopened],
        )

    await change(rt, case_id, restore, retries=3)  # a key another open case holds: Conflict

    def give_back(doc: Doc) -> CaseUpdate | None:
        if case_id not in (doc.get("merged_from") or []):
            return None
        keys = list(absorbed.get("worker_keys") or [])  # different from the survivor's, or they had joined
        return CaseUpdate(
            merge_updates(
                {
                    "$pullAll": {"incident_ids": moved, "merged_from": [case_id], "worker_keys": keys},
                    "$set": {"updated_at": now},
                },
                push_timeline(entry(at=now, kind="unmerged", by=actor, reason=reason, case_id=case_id)),
            )
        )

    await change(rt, survivor_id, give_back, retries=3)

    def done(doc: Doc) -> CaseUpdate | None:
        return CaseUpdate({"$unset": {UNMERGING: ""}}) if doc.get(UNMERGING) == survivor_id else None

    return await change(rt, case_id, done, retries=3)
