"""A service's moving parts in one place, and the FastAPI app that starts and stops them.

About 400 lines, kept as one module: the Runtime (database, broker, relay, background tasks),
its start and stop, and the app that serves health, readiness, metrics and the problem answers
are one life cycle; every service builds itself from it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException

from shared import logs
from shared.clock import Clock
from shared.envelope import Event
from shared.errors import (
    PROBLEM_JSON,
    Problem,
    from_detail,
    problem,
    problem_response,
    request_field_errors,
)
from shared.kafka import (
    AfterHandle,
    BatchHandler,
    Commits,
    DeadLetters,
    Handler,
    consumer_lag,
    ensure_topics,
    make_broker,
    subscribe,
)
from shared.metrics import CONTENT_TYPE, HTTPMetrics, Metrics
from shared.mongo import Doc, connect
from shared.outbox import Outbox, OutboxRelay
from shared.pii import vault_for
from shared.settings import Settings, refuse_unsafe
from shared.strictjson import StrictJSON, is_json
from shared.topics import Topic

log = logging.getLogger("lindungi.service")

# Seconds a client is told to wait (Retry-After) when the database does not answer.
DATABASE_RETRY_AFTER = 5
READY_TIMEOUT = 3.0  # seconds readiness waits for each dependency
STOP_GRACE = 5.0  # seconds a long-lived task has to end after a cancel, at stop

Startup = Callable[[], Awaitable[None]]
IndexSetup = Callable[[AsyncDatabase[Doc]], Awaitable[None]]  # a module's `ensure_indexes(db)`
Handlers = Mapping[type[Event], Handler]


async def stop_tasks(tasks: list[asyncio.Task[Any]], *, grace: float = STOP_GRACE, rounds: int = 3) -> None:
    """Cancel long-lived tasks and wait for them, never forever.

    A task that swallowed its cancellation (a library that turns it into another error, or
    Python 3.11's wait_for: shared/aio.py) is cancelled again after `grace` seconds, up to
    `rounds` times; one still running after that is named in the log and left behind, so a
    stop (and a test's teardown) ends.
    """
    pending = {t for t in tasks if not t.done()}
    for attempt in range(1, rounds + 1):
        if not pending:
            break
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace)
        if pending:
            log.warning(
                "tasks still running %.0f s after cancel %d: %s",
                grace,
                attempt,
                ", ".join(t.get_name() + " " + repr(t.get_coro()) for t in pending),
            )
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: an error at stop is not news, and not left to the loop to report
    if pending:
        log.error("gave up waiting for %d task(s) at stop", len(pending))


class Readiness(BaseModel):
    """A replica ready to serve: each dependency "ok" (else the 503 problem names the reason)."""

    ready: bool
    mongodb: str
    kafka: str


class Runtime:
    """Settings, clock, database, broker, outbox and relay of one service replica."""

    def __init__(
        self,
        name: str,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        outbox_collections: list[str] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or Settings()
        refuse_unsafe(self.settings)  # production with a development secret: no start at all
        self.clock = clock or self.settings.clock()
        self.instance = self.settings.instance or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.metrics = Metrics(name)
        self.metrics.on_scrape("outbox", self._outbox_gauges)
        self.metrics.on_scrape("consumer_lag", self._lag_gauges)
        self.mongo = connect(self.settings)
        self.db: AsyncDatabase[Doc] = self.mongo[self.settings.database(name)]
        self.broker = make_broker(self.settings, client_id=name)
        self.vault = vault_for(self.settings)
        self.outbox = Outbox(source=f"lindungi/{name}", clock=self.clock)
        self.relay = OutboxRelay(
            db=self.db,
            collections=outbox_collections or [],
            publish=self._publish,
            owner=self.instance,
            poll_seconds=self.settings.outbox_poll_seconds,
            lease_seconds=self.settings.outbox_lease_seconds,
            sweep_seconds=self.settings.outbox_sweep_seconds,
        )
        self.dead_letters: list[DeadLetters] = []
        self.commits: list[Commits] = []  # one a consumer (shared/kafka.Commits)
        self.consumed: list[tuple[Topic, str]] = []  # (topic, consumer group): the true event map
        self.handles: dict[tuple[str, str], tuple[str, ...]] = {}  # (topic, group) -> event types handled
        self.after_handle: list[AfterHandle] = []  # test seam, see shared.kafka
        self._startup: list[Startup] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._relay_task: asyncio.Task[None] | None = None
        self.started = False

    async def _publish(self, topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        await self.broker.publish(body, topic=self.settings.topic(topic), key=key, headers=headers)
        self.metrics.published.labels(topic).inc()

    async def _outbox_gauges(self) -> None:
        count, oldest = await self.relay.waiting()
        self.metrics.outbox_waiting.set(count)
        age = (self.clock.now() - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        self.metrics.outbox_oldest_age.set(max(age, 0.0))

    async def _lag_gauges(self) -> None:
        if not self.consumed:
            return
        prefix = self.settings.namespace
        for (group, topic), behind in (await consumer_lag(self.settings, self.consumed)).items():
            self.metrics.consumer_lag.labels(group.removeprefix(prefix), topic).set(behind)

    def consume(
        self,
        topic: Topic,
        handlers: Mapping[type[Event], Handler],
        *,
        group: str | None = None,
        batch: BatchHandler | None = None,
        concurrent: int = 1,
    ) -> None:
        """Subscribe this service's consumer group to a topic (before start); with `batch`, the
        group takes its events many at a time, with `concurrent`, several keys' events side by
        side (shared.kafka.subscribe)."""
        self.consumed.append((topic, self.settings.group(group or f"{self.name}.{topic.name}")))
        self.handles[(topic.name, group or f"{self.name}.{topic.name}")] = tuple(
            sorted(cls.type for cls in handlers)
        )
        commits = Commits(every=self.settings.commit_every_seconds, most=self.settings.commit_most)
        self.commits.append(commits)
        dead = subscribe(
            self.broker,
            self.settings,
            topic,
            group=group or f"{self.name}.{topic.name}",
            handlers=handlers,
            batch=batch,
            concurrent=concurrent,
            after_handle=self.after_handle,
            metrics=self.metrics,
            commits=commits,
        )
        self.dead_letters.append(dead)

    def consume_each(self, subscriptions: Mapping[Topic, Handlers]) -> None:
        """`consume` each topic with its handlers, one consumer group per topic (before start)."""
        for topic, handlers in subscriptions.items():
            self.consume(topic, handlers)

    def ensure_indexes(self, *setups: IndexSetup) -> None:
        """Create each module's indexes in this service's database before consuming starts."""
        for setup in setups:
            self.on_startup(functools.partial(setup, self.db))

    def on_startup(self, fn: Startup) -> Startup:
        """Run fn (index creation, loading data) before consuming starts."""
        self._startup.append(fn)
        return fn

    def background(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """Run a long-lived task (timers, relays) between start and stop."""
        self._startup.append(lambda: self._spawn(coro_fn))

    async def _spawn(self, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        self._tasks.append(asyncio.create_task(coro_fn()))  # type: ignore[arg-type]

    async def start(self, database_wait: float = 60.0) -> None:
        await self._wait_for_database(database_wait)
        await ensure_topics(self.settings)
        await self.relay.ensure_indexes()
        for fn in self._startup:
            await fn()
        for commits in self.commits:
            commits.resume()
        await self.broker.start()
        self._relay_task = asyncio.create_task(self.relay.run())
        self._tasks.append(self._relay_task)
        self.started = True
        log.info("service started", extra={"topic": self.settings.namespace or "-"})

    async def _wait_for_database(self, timeout: float) -> None:
        """A replica (re)started while the database is away waits for it, as it waits for Kafka."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self.mongo.admin.command("ping")
                return
            except ConnectionFailure as exc:
                if loop.time() > deadline:
                    raise RuntimeError(
                        f"MongoDB at {self.settings.mongodb_uri} did not answer within {timeout:.0f}s: {exc}"
                    ) from exc
                log.warning("database unreachable at start; waiting", extra={"error": type(exc).__name__})
                await asyncio.sleep(1)

    async def stop(self) -> None:
        # The relay first, and gently: cancelled mid-publish it would leave a lease that keeps
        # the next replica from that document for outbox_lease_seconds.
        self.relay.stop()
        if self._relay_task is not None:
            await asyncio.wait({self._relay_task}, timeout=STOP_GRACE)
            self._relay_task = None
        await stop_tasks(self._tasks)
        self._tasks.clear()
        for commits in self.commits:  # what is handled is committed, and from here each message at once
            await commits.stopping()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.mongo.close()
        self.started = False

    async def ready(self) -> dict[str, str]:
        """What readiness depends on, each 'ok' or the reason."""
        out = {"mongodb": "ok", "kafka": "ok"}
        try:
            # bounded: the driver would wait its whole server selection timeout for an absent database
            await asyncio.wait_for(self.mongo.admin.command("ping"), READY_TIMEOUT)
        except Exception as exc:
            out["mongodb"] = type(exc).__name__
        try:
            await self.broker.ping(timeout=2.0)
        except Exception as exc:
            out["kafka"] = type(exc).__name__
        return out


def runtime(request: Request) -> Runtime:
    """The Runtime of the service answering a request (views' one way to their dependencies)."""
    return request.app.state.runtime  # type: ignore[no-any-return]


def create_app(runtime: Runtime, *, title: str, description: str, routers: list[Any]) -> FastAPI:
    """The service's HTTP side; its lifespan starts and stops the runtime."""
    logs.configure(runtime.name, runtime.settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime

    app.add_middleware(StrictJSON)
    app.add_middleware(HTTPMetrics, metrics=runtime.metrics)  # outermost: sees every answer

    install_problem_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok", "service": runtime.name}

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=Readiness,
        responses={503: {"description": "The database or the broker does not answer (a problem)."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """The database and the broker answer."""
        checks = await runtime.ready()
        ok = runtime.started and all(v == "ok" for v in checks.values())
        if ok:
            return JSONResponse(status_code=200, content={"ready": ok, **checks})
        down = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok") or "not started"
        members: dict[str, Any] = {"ready": ok, **checks}
        body = problem(503, detail=f"not ready ({down})", instance=request.url.path, **members)
        return problem_response(503, body)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Prometheus metrics of this replica (text exposition format)."""
        return Response(await runtime.metrics.render(), media_type=CONTENT_TYPE)

    for r in routers:
        app.include_router(r)
    _declare_problem(app)
    return app


def install_problem_handlers(app: FastAPI) -> None:
    """Every error answer as an RFC 9457 problem (shared.errors): views' HTTPExceptions, FastAPI's
    validation errors, Starlette's 404/405, an unreachable database and anything unexpected."""

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        extra: dict[str, Any] = {}
        if headers.get("Retry-After", "").isdigit():
            extra["retry_after"] = int(headers["Retry-After"])
        body = from_detail(exc.status_code, exc.detail, instance=request.url.path, **extra)
        return problem_response(exc.status_code, body, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        sent = request.headers.get("content-type", "")
        if sent and not is_json(sent) and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            reason = f"is {sent.split(';')[0]}; this endpoint takes application/json"
            body = problem(
                415, errors=[{"field": "content-type", "reason": reason}], instance=request.url.path
            )
            return problem_response(415, body)
        body = problem(422, errors=request_field_errors(errors), instance=request.url.path)
        return problem_response(422, body)

    @app.exception_handler(ConnectionFailure)
    async def database_away(request: Request, exc: ConnectionFailure) -> JSONResponse:
        # The database is unreachable (stopped, restarting, network): nothing was decided, so the
        # client may repeat the request (with the same Idempotency-Key) after Retry-After.
        log.warning("database unreachable; answered 503", extra={"error": type(exc).__name__})
        body = problem(
            503,
            detail="the database is unreachable; retry later",
            instance=request.url.path,
            retry_after=DATABASE_RETRY_AFTER,
        )
        return problem_response(503, body, headers={"Retry-After": str(DATABASE_RETRY_AFTER)})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception (and re-raises it after this answer); the body names nothing.
        body = problem(500, detail="an unexpected error; it is logged", instance=request.url.path)
        return problem_response(500, body)


def _declare_problem(app: FastAPI) -> None:
    """The OpenAPI document shows the error shape the service really answers with (Problem, as
    application/problem+json), not FastAPI's default validation error: for the 422 FastAPI
    documents, and for every other 4xx and 5xx an operation may answer (the 4XX and 5XX ranges)."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain()
        parts = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(parts.pop("$defs", {}))
        schemas["Problem"] = parts
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        text = json.dumps(schema).replace(
            "#/components/schemas/HTTPValidationError", "#/components/schemas/Problem"
        )
        schema = json.loads(text)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict) and "responses" in operation:
                    _problem_responses(operation["responses"])
        app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem_responses(responses: dict[str, Any]) -> None:
    for code, response in responses.items():
        if code[:1] not in "45":
            continue
        if "application/json" in response.get("content", {}):
            response["content"] = {PROBLEM_JSON: response["content"]["application/json"]}
        elif not response.get("content"):  # a view's own description of the status (intake's 429)
            response["content"] = _PROBLEM_CONTENT
    responses.setdefault(
        "4XX", {"description": "A problem of the request (RFC 9457)", "content": _PROBLEM_CONTENT}
    )
    responses.setdefault(
        "5XX", {"description": "A problem of the service (RFC 9457)", "content": _PROBLEM_CONTENT}
    )
