"""registry's Kafka side: flags requested by escalation rules, and cases opened (counted per agency)."""

from __future__ import annotations

from typing import Any

from services.registry import service
from shared.envelope import Envelope, Event
from shared.events.casework import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    CaseTriaged,
    CaseWorkerMatched,
)
from shared.events.escalation import FlagRequested
from shared.kafka import Handler
from shared.service import Runtime
from shared.vocab import Category


def flag_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """Handlers of REGISTRY_COMMANDS."""

    async def on_flag_requested(env: Envelope, cmd: FlagRequested) -> None:
        """Flag the agency or employer; the same action twice flags once."""
        await service.flag_party(
            rt=rt,
            kind=cmd.subject_kind,
            party_id=cmd.subject_id,
            action_id=cmd.action_id,
            rule_id=cmd.rule_id,
            reason=cmd.reason,
            at=cmd.requested_at,
        )

    return {FlagRequested: on_flag_requested}


def case_handlers(rt: Runtime) -> dict[type[Event], Handler]:
    """Handlers of CASES: count cases opened, open and closed about each agency's workers."""

    async def on_case_opened(env: Envelope, case: CaseOpened) -> None:
        if case.agency_id:
            await service.count_case(rt=rt, agency_id=case.agency_id, case_id=case.case_id)
        if case.category == Category.DEATH and case.worker_id and not case.group:
            # a mission's death report about a registered worker: the registry says so
            await service.record_death(rt=rt, worker_id=case.worker_id)

    async def on_case_finished(env: Envelope, case: CaseResolved | CaseClosed) -> None:
        if case.agency_id:
            await service.case_left_open(rt=rt, agency_id=case.agency_id, case_id=case.case_id)

    async def on_case_reopened(env: Envelope, case: CaseReopened) -> None:
        if case.agency_id:
            await service.case_reopened(rt=rt, agency_id=case.agency_id, case_id=case.case_id)

    async def on_worker_matched(env: Envelope, case: CaseWorkerMatched) -> None:
        if case.agency_id:  # matched late: the agency's worker after all (counted once per case)
            await service.count_case(rt=rt, agency_id=case.agency_id, case_id=case.case_id)
        if case.category == Category.DEATH:  # a death reported before the departure was known
            await service.record_death(rt=rt, worker_id=case.worker_id)

    async def on_case_triaged(env: Envelope, case: CaseTriaged) -> None:
        if case.category == Category.DEATH and case.worker_id and not case.group:
            # the desk confirmed a death at triage (a report of illness, lost contact...): as a death report
            await service.record_death(rt=rt, worker_id=case.worker_id)

    handlers: dict[type[Event], Any] = {
        CaseOpened: on_case_opened,
        CaseWorkerMatched: on_worker_matched,
        CaseTriaged: on_case_triaged,
        CaseResolved: on_case_finished,
        CaseClosed: on_case_finished,
        CaseReopened: on_case_reopened,
    }
    return handlers
