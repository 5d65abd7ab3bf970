"""registry service: `uvicorn --factory services.registry.app:create_app --port 8001`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.registry import handlers, party_views, service, store, views
from shared import audit, retention, topics
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8001


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire registry's database, topics and HTTP routes."""
    rt = Runtime("registry", settings=settings, clock=clock, outbox_collections=[store.DEPARTURES])
    rt.ensure_indexes(store.ensure_indexes, audit.ensure_indexes)
    if rt.settings.retention_days > 0:
        rt.background(
            lambda: retention.run_forever(
                lambda age: service.anonymise_ended(rt=rt, older_than=age),
                older_than=timedelta(days=rt.settings.retention_days),
                every_seconds=rt.settings.retention_every_seconds,
            )
        )
    rt.consume_each(
        {
            topics.REGISTRY_COMMANDS: handlers.flag_handlers(rt),
            topics.CASES: handlers.case_handlers(rt),
        }
    )
    app = create_service_app(
        rt,
        title="Lindungi registry",
        description=(
            "Departures, workers, agencies and employers. NIK and passport numbers are encrypted at "
            "rest and searched by keyed hash; every departure change is published as DepartureRecorded."
        ),
        routers=[views.router, party_views.router, audit.router],
    )
    return app
