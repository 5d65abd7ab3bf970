"""escalation service: `uvicorn --factory services.escalation.app:create_app --port 8004`."""

from __future__ import annotations

from fastapi import FastAPI

from services.escalation import handlers, store, views
from services.escalation.engine import Escalation
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8004

DESCRIPTION = """Automated escalation rules with durable deadlines.

Rules are data (YAML), validated whole and versioned: `GET /v1/rules` lists the rules in force,
`POST /v1/rules` loads a new set (supervisors and administrators; an invalid file is refused
whole and the rules in force keep running), `POST /v1/rules/dry-run` replays stored events
through a candidate file and reports the difference, acting on nothing.

**Chains are frozen.** When a deadline chain starts (a case starts escalating), the stages of
its rule are copied into it: editing or replacing the rules later does not change chains
already under way, only chains that start afterwards (`GET /v1/chains?case_id=` shows them).
"""


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    timer_poll_seconds: float = 0.5,
    timer_loop: bool = True,
) -> FastAPI:
    """Wire escalation's database, topics, timer loop and HTTP routes."""
    rt = Runtime("escalation", settings=settings, clock=clock, outbox_collections=[store.EMISSIONS])
    engine = Escalation(rt, poll_seconds=timer_poll_seconds)
    rt.on_startup(engine.startup)
    handlers.subscribe(rt, engine)
    if timer_loop:
        rt.background(engine.run)
    app = create_service_app(rt, title="Lindungi escalation", description=DESCRIPTION, routers=[views.router])
    app.state.escalation = engine
    return app
