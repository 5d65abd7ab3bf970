"""registry service: `uvicorn --factory services.registry.app:create_app --port 8001`."""

from __future__ import annotations

from fastapi import FastAPI

from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8001


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire registry's database, topics and HTTP routes."""
    rt = Runtime("registry", settings=settings, clock=clock)
    return create_service_app(
        rt,
        title="Lindungi registry",
        description="Departures, workers, agencies and employers.",
        routers=[],
    )
