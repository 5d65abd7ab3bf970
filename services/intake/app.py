"""intake service: `uvicorn --factory services.intake.app:create_app --port 8002`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.intake import domain, handlers, store, views
from shared import audit, topics
from shared.clock import Clock
from shared.errors import problem, problem_response
from shared.ratelimit import RateLimiter
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8002


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Wire intake's database, topics and HTTP routes."""
    rt = Runtime("intake", settings=settings, clock=clock, outbox_collections=[store.INCIDENTS])
    rt.ensure_indexes(store.ensure_indexes, audit.ensure_indexes)
    rt.consume_each(
        {
            topics.DEPARTURES: handlers.departure_handlers(rt),
            topics.INCIDENT_SUBMISSIONS: handlers.submission_handlers(rt),
            topics.CASES: handlers.case_handlers(rt),
        }
    )
    app = create_service_app(
        rt,
        title="Lindungi intake",
        description=(
            "Incident reports from embassies and consulates (bearer credential of the mission), "
            "matched to registered departures; unmatched workers are accepted and flagged non-procedural."
        ),
        routers=[views.router, audit.router],
    )
    app.state.limiter = RateLimiter(
        rt.db,
        clock=rt.clock,
        limit=rt.settings.incident_rate_limit,
        window_seconds=rt.settings.incident_rate_window_seconds,
    )
    app.add_middleware(BodyLimit, limit=domain.MAX_BODY_BYTES)  # outermost: before anything reads
    return app


class BodyLimit:
    """ASGI middleware: refuse a body declared larger than `limit` bytes (413) before reading it.

    A plain ASGI callable, not `@app.middleware("http")`: Starlette's request/response middleware
    runs each request through a task and memory streams of its own, about a millisecond of the
    Python process's CPU a report (issue 11's throughput).
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > self.limit:
                too_large = {"field": "(body)", "reason": f"larger than {self.limit} bytes"}
                answer = problem_response(413, problem(413, errors=[too_large], instance=request.url.path))
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
