"""escalation service: `uvicorn --factory services.escalation.app:create_app --port 8004`."""

from __future__ import annotations

from fastapi import FastAPI

from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8004


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire escalation's database, topics and HTTP routes."""
    rt = Runtime("escalation", settings=settings, clock=clock)
    return create_service_app(
        rt,
        title="Lindungi escalation",
        description="Automated escalation rules with durable deadlines.",
        routers=[],
    )
