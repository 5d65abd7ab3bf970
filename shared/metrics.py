"""Prometheus metrics of one service replica, served at `/metrics`.

Each Runtime owns its own CollectorRegistry: several services run in one test process, and their
counters must not mix. Labels are bounded on purpose: catalog topic names (never the namespaced
broker name), route templates (`/v1/cases/{case_id}`, never a path with an id), status codes,
dead-letter kinds. No personal data and no ids ever become a label.

Gauges that describe stored state (outbox waiting, pending timers) are refreshed by async
callbacks right before each scrape (`on_scrape`), so they cost nothing between scrapes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("lindungi.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
SCRAPE_TIMEOUT = 5.0  # seconds each refresh may take before the scrape answers without it

Refresh = Callable[[], Awaitable[None]]


class Metrics:
    """The metric families every service has; services add their own on `registry`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            "lindungi_http_request_duration_seconds",
            "HTTP request duration by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.consumed = Counter(
            "lindungi_messages_consumed", "Messages consumed, per topic.", ["topic"], registry=r
        )
        self.published = Counter(
            "lindungi_messages_published", "Events published, per topic.", ["topic"], registry=r
        )
        self.handler_failures = Counter(
            "lindungi_handler_failures",
            "Handler attempts that raised (each retry counts), per topic.",
            ["topic"],
            registry=r,
        )
        self.dead_letters = Counter(
            "lindungi_dead_letters",
            "Messages sent to the dead-letter topic, per origin topic and kind.",
            ["topic", "kind"],
            registry=r,
        )
        self.outbox_waiting = Gauge(
            "lindungi_outbox_waiting", "Outbox entries not yet published.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "lindungi_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox entry (0 when none waits).",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "lindungi_consumer_lag",
            "Messages behind the end of the topic, per consumer group and topic.",
            ["group", "topic"],
            registry=r,
        )
        self.scrape_errors = Counter(
            "lindungi_metrics_refresh_errors",
            "Scrape-time refreshes that failed or timed out (the gauge keeps its last value).",
            ["refresh"],
            registry=r,
        )
        self._refresh: list[tuple[str, Refresh]] = []
        self.parts: dict[str, Any] = {}  # a service's own metric families, by name

    def on_scrape(self, name: str, fn: Refresh) -> None:
        """Run fn before each scrape (it sets gauges from stored state)."""
        self._refresh.append((name, fn))

    async def render(self) -> bytes:
        """Refresh the state gauges, then the text exposition format."""
        for name, fn in self._refresh:
            try:
                await asyncio.wait_for(fn(), SCRAPE_TIMEOUT)
            except Exception as exc:
                self.scrape_errors.labels(name).inc()
                log.warning("metrics refresh failed", extra={"error": f"{name}: {type(exc).__name__}"})
        return generate_latest(self.registry)


class HTTPMetrics:
    """ASGI middleware: observes every request's duration by its route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            # the template, never the path: ids would make the label unbounded
            template = getattr(route, "path", None) or "(unmatched)"
            self.metrics.http_duration.labels(template, scope.get("method", "?"), str(status)).observe(
                time.perf_counter() - start
            )
