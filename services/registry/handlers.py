"""registry's Kafka side: flags requested by escalation rules, and cases opened (counted per agency)."""

from __future__ import annotations

from typing import Any

from services.registry import service
from shared.envelope import Envelope, Event
from shared.events.casework import CaseOpened
from shared.events.escalation import FlagRequested
from shared.kafka import Handler


def flag_handlers(deps: service.Deps) -> dict[type[Event], Handler]:
    """Handlers of REGISTRY_COMMANDS."""

    async def on_flag_requested(env: Envelope, cmd: FlagRequested) -> None:
        """Flag the agency or employer; the same action twice flags once."""
        await service.flag_party(
            deps=deps,
            kind=cmd.subject_kind,
            party_id=cmd.subject_id,
            action_id=cmd.action_id,
            rule_id=cmd.rule_id,
            reason=cmd.reason,
            at=cmd.requested_at,
        )

    return {FlagRequested: on_flag_requested}


def case_handlers(deps: service.Deps) -> dict[type[Event], Handler]:
    """Handlers of CASES: count cases opened about each agency's workers."""

    async def on_case_opened(env: Envelope, case: CaseOpened) -> None:
        if case.agency_id:
            await service.count_case(deps=deps, agency_id=case.agency_id, case_id=case.case_id)

    handlers: dict[type[Event], Any] = {CaseOpened: on_case_opened}
    return handlers
