"""casework service: `uvicorn --factory services.casework.app:create_app --port 8003`."""

from __future__ import annotations

from fastapi import FastAPI

from services.casework import handlers, store, views
from shared import topics
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8003


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire casework's database, topics and HTTP routes."""
    rt = Runtime("casework", settings=settings, clock=clock, outbox_collections=[store.CASES])
    rt.on_startup(lambda: store.ensure_indexes(rt.db))
    rt.consume(topics.INCIDENTS, handlers.make_handlers(rt))
    return create_service_app(
        rt,
        title="Lindungi casework",
        description="Protection cases worked by the central protection desk.",
        routers=[views.router],
    )
