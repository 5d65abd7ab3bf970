"""The read models each service derives only from topics, which `lindungi replay SERVICE` rebuilds.

intake and repatriation keep their own projection of registry's departures. (escalation's
counters and chains also come from events, but through the rules in force when each event
arrived and through timers; rebuilding them is not a plain replay and is not offered.)
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.intake import service as intake_service
from services.intake import store as intake_store
from services.repatriation import store as repatriation_store
from shared.events.registry import DepartureRecorded
from shared.mongo import Doc
from shared.replay import ReadModel
from shared.topics import DEPARTURES


async def _intake(db: AsyncDatabase[Doc], event: Any) -> None:
    if isinstance(event, DepartureRecorded):
        await intake_service.project(db=db, event=event)


async def _repatriation(db: AsyncDatabase[Doc], event: Any) -> None:
    if isinstance(event, DepartureRecorded):
        await repatriation_store.replay_departure(db, event)


READ_MODELS: dict[str, list[ReadModel]] = {
    "intake": [
        ReadModel(
            service="intake",
            topic=DEPARTURES,
            collections=(intake_store.DEPARTURES, intake_store.DEPARTURE_KEYS),
            project=_intake,
            indexes=intake_store.ensure_indexes,
        )
    ],
    "repatriation": [
        ReadModel(
            service="repatriation",
            topic=DEPARTURES,
            collections=(repatriation_store.DEPARTURES,),
            project=_repatriation,
            indexes=repatriation_store.ensure_indexes,
        )
    ],
}
