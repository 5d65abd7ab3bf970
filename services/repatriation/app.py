"""repatriation service: `uvicorn --factory services.repatriation.app:create_app --port 8005`."""

from __future__ import annotations

from fastapi import FastAPI

from services.repatriation import evacuation, handlers, plans, store, views
from shared import topics
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8005


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire repatriation's database, topics, background fan-out sweeper and HTTP routes."""
    rt = Runtime("repatriation", settings=settings, clock=clock, outbox_collections=[store.WORKFLOWS])
    plans.load()  # a malformed plan stops the service at start, not at the first request
    rt.on_startup(lambda: store.ensure_indexes(rt.db))
    rt.consume(topics.REPATRIATION_REQUESTS, handlers.request_handlers(rt))
    rt.consume(topics.DEPARTURES, handlers.departure_handlers(rt))
    rt.consume(topics.CASES, handlers.case_handlers(rt))
    rt.consume(topics.INCIDENTS, handlers.incident_handlers(rt))
    rt.background(lambda: evacuation.sweep_fanouts(rt))
    return create_service_app(
        rt,
        title="Lindungi repatriation",
        description="Repatriation workflows until hand-over at home: living workers, remains, evacuations.",
        routers=[views.router],
    )
