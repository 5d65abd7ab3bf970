"""The read models each service derives only from topics, which `lindungi replay SERVICE` rebuilds.

intake and repatriation keep their own projection of registry's departures; escalation keeps
counters (services/escalation/recount.py: members from the topics under the rule set in force
at each event's time, what was counted from the decisions it keeps). escalation's chains are
not rebuilt: they are timers whose firings are decisions, not a projection of events.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.escalation import ruleset as escalation_ruleset
from services.escalation import store as escalation_store
from services.escalation.recount import Recount
from services.intake import service as intake_service
from services.intake import store as intake_store
from services.repatriation import store as repatriation_store
from shared.envelope import Envelope
from shared.events.registry import DepartureRecorded
from shared.mongo import Doc
from shared.replay import ReadModel, plain
from shared.topics import DEPARTURES


async def _intake(db: AsyncDatabase[Doc], _env: Envelope, event: Any) -> None:
    if isinstance(event, DepartureRecorded):
        await intake_service.project(db=db, event=event)


async def _repatriation(db: AsyncDatabase[Doc], _env: Envelope, event: Any) -> None:
    if isinstance(event, DepartureRecorded):
        await repatriation_store.replay_departure(db, event)


READ_MODELS: dict[str, list[ReadModel]] = {
    "intake": [
        ReadModel(
            service="intake",
            topics=(DEPARTURES,),
            collections=(intake_store.DEPARTURES, intake_store.DEPARTURE_KEYS),
            projector=plain(_intake),
            indexes=intake_store.ensure_indexes,
        )
    ],
    "repatriation": [
        ReadModel(
            service="repatriation",
            topics=(DEPARTURES,),
            collections=(repatriation_store.DEPARTURES,),
            projector=plain(_repatriation),
            indexes=repatriation_store.ensure_indexes,
        )
    ],
    "escalation": [
        ReadModel(
            service="escalation",
            topics=escalation_ruleset.CONSUMED,
            collections=(escalation_store.COUNTERS,),
            projector=Recount.start,
            indexes=escalation_store.ensure_indexes,
        )
    ],
}
