"""intake service: `uvicorn --factory services.intake.app:create_app --port 8002`."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake import store, views
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8002


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire intake's database, topics and HTTP routes."""
    rt = Runtime("intake", settings=settings, clock=clock, outbox_collections=[store.INCIDENTS])
    rt.on_startup(lambda: store.ensure_indexes(rt.db))
    return create_service_app(
        rt,
        title="Lindungi intake",
        description="Incident reports from embassies and consulates.",
        routers=[views.router],
    )
