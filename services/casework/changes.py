"""How casework changes a case: one conditional write carrying the change, its timeline entry and
its outgoing events (outbox).

Every change of a case is ONE find_one_and_update, filtered on the status that was read: if the
case moved meanwhile, nothing is written and the caller answers 409 (HTTP) or re-reads (handlers).
The use cases build their changes (`CaseUpdate`s) in placement, desk, claims and merge; this module
writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.casework import domain, store
from services.casework.domain import Action
from shared.envelope import Event
from shared.errors import Conflict
from shared.events.casework import CaseChange
from shared.mongo import Doc, merge_updates
from shared.service import Runtime

CASE_NS = uuid.UUID("6f1c1d52-53f4-4e8b-9a57-1a2f0c7d3e10")


def case_id_for(source_id: str) -> str:
    """The id of the case an incident (or an escalation action) opens: derived, so a redelivery finds it."""
    return uuid.uuid5(CASE_NS, source_id).hex


class NotFound(Exception):
    """No such case."""


OPEN_ELSEWHERE = "another open case of this worker and category family exists"


async def check_reopen(rt: Runtime, case_id: str) -> None:
    """Conflict when a newer open case holds the worker's incidents (checked before writing; the
    unique index decides a race)."""
    doc = await store.get_raw(rt.db, case_id)
    if doc is None:
        raise NotFound(case_id)
    key = doc.get("join_key")
    if key and doc.get("open_key") != key:
        holder = await store.find_open(rt.db, key)
        if holder is not None and holder["_id"] != case_id:
            raise Conflict(OPEN_ELSEWHERE, status=doc["status"])


class Forbidden(Exception):
    """The caller's role or relation to the case does not allow the action."""


@dataclass
class InvalidField(ValueError):
    """A request field that the case refuses (HTTP 422 naming the field)."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass
class CaseUpdate:
    """What one change writes: an update, extra filter conditions, and the events it emits."""

    update: Doc
    events: list[Event] = field(default_factory=list)
    filter: Doc = field(default_factory=dict)


def entry(*, at: datetime, kind: str, by: str, reason: str | None = None, **extra: Any) -> Doc:
    """One timeline entry: what happened, when, by whom and why."""
    return {
        "at": at,
        "kind": kind,
        "by": by,
        "reason": reason,
        **{k: v for k, v in extra.items() if v is not None},
    }


def push_timeline(*entries: Doc) -> Doc:
    return {"$push": {"timeline": {"$each": list(entries)}}}


async def change(
    rt: Runtime, case_id: str, build: Callable[[Doc], CaseUpdate | None], *, retries: int = 0
) -> Doc:
    """Read the case, build the change for its current state, and write it only if the status is unchanged.

    build returns None when there is nothing to do (an event applied before); it raises Conflict
    when the action is not allowed. With retries=0 (HTTP), a lost race answers Conflict.
    """
    for _ in range(retries + 1):
        doc = await store.get_raw(rt.db, case_id)
        if doc is None:
            raise NotFound(case_id)
        case_update = build(doc)
        if case_update is None:
            return store.strip(doc)
        entries = [rt.outbox.entry(e, key=case_id) for e in case_update.events]
        query = {"_id": case_id, "status": doc["status"], **case_update.filter}
        try:
            after = await store.update(rt.db, query, rt.outbox.on_update(case_update.update, entries))
        except DuplicateKeyError as exc:  # reopening while a newer open case holds the worker's key
            raise Conflict(OPEN_ELSEWHERE, status=doc["status"]) from exc
        if after is not None:
            if entries:
                rt.relay.wake(case_id)
            return after
    current = await store.get_raw(rt.db, case_id)
    if current is None:
        raise NotFound(case_id)
    raise Conflict("the case changed meanwhile; read it again", status=current["status"])


def case_change(
    cls: type[CaseChange], doc: Doc, *, actor: str, at: datetime, status: str | None = None, **kw: Any
) -> CaseChange:
    """A case event about doc, moving it to status (by default, it stays in its status)."""
    kw.setdefault("agency_id", doc.get("agency_id"))
    current = doc["status"]
    return cls(
        case_id=doc["_id"], status=status or current, previous_status=current, actor=actor, at=at, **kw
    )


def transition_update(
    doc: Doc,
    action: Action,
    *,
    event_cls: type[CaseChange],
    kind: str,
    actor: str,
    now: datetime,
    reason: str | None,
    set_: Doc | None = None,
    unset: Doc | None = None,
    filter_: Doc | None = None,
    event_kw: Doc | None = None,
    extra_events: list[Event] | None = None,
    timeline_extra: Doc | None = None,
) -> CaseUpdate:
    """The update of a lifecycle transition (its event of event_cls, its timeline entry of kind),
    or Conflict when the table does not allow it."""
    current = doc["status"]
    new = domain.transition(current, action, triaged=bool(doc.get("triaged_at")))
    if new is None:
        raise Conflict(f"cannot {action.value} a case that is {current}", status=current)
    stamps = {domain.STAMP[new]: now} if new in domain.STAMP else {}
    upd: Doc = {"$set": {"status": new.value, "updated_at": now, **stamps, **(set_ or {})}}
    if unset:
        upd["$unset"] = unset
    tl = entry(
        at=now,
        kind=kind,
        by=actor,
        reason=reason,
        status=new.value,
        previous=current,
        **(timeline_extra or {}),
    )
    ev = case_change(event_cls, doc, status=new.value, actor=actor, at=now, reason=reason, **(event_kw or {}))
    return CaseUpdate(merge_updates(upd, push_timeline(tl)), [ev, *(extra_events or [])], filter_ or {})
