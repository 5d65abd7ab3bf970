"""Retention (UU PDP): cases closed long ago are anonymised; intake forgets their reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.casework import domain, store
from shared.events.casework import CaseAnonymised
from shared.service import Runtime


@dataclass
class CaseRetention:
    """What one retention run did in casework."""

    cutoff: datetime
    cases: int = 0

    def __str__(self) -> str:
        return f"retention: anonymised {self.cases} cases closed before {self.cutoff.isoformat()}"


async def anonymise_closed(rt: Runtime, *, older_than: timedelta, limit: int = 1000) -> CaseRetention:
    """Anonymise cases closed more than `older_than` ago (a case reopened meanwhile is left alone)."""
    now = rt.clock.now()
    report = CaseRetention(cutoff=now - older_than)
    for case in await store.closed_before(rt.db, report.cutoff, limit):
        # intake forgets the reports when it hears of it (the narrative, the worker's identifiers)
        event = CaseAnonymised(
            case_id=case["_id"], incident_ids=case.get("incident_ids") or [], anonymised_at=now
        )
        update = rt.outbox.on_update(
            {"$set": domain.anonymised(case, now)}, [rt.outbox.entry(event, key=case["_id"])]
        )
        if await store.anonymise(rt.db, case, update):
            report.cases += 1
            rt.relay.wake(case["_id"])
    return report
