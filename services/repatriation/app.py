"""repatriation service: `uvicorn --factory services.repatriation.app:create_app --port 8005`."""

from __future__ import annotations

from fastapi import FastAPI

from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8005


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire repatriation's database, topics and HTTP routes."""
    rt = Runtime("repatriation", settings=settings, clock=clock)
    return create_service_app(
        rt,
        title="Lindungi repatriation",
        description="Repatriation workflows until hand-over at home.",
        routers=[],
    )
