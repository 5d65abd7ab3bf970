"""casework service: `uvicorn --factory services.casework.app:create_app --port 8003`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.casework import anonymise, handlers, queues, store, views
from shared import retention, topics
from shared.clock import Clock
from shared.service import Runtime
from shared.service import create_app as create_service_app
from shared.settings import Settings

PORT = 8003


def create_app(
    settings: Settings | None = None, clock: Clock | None = None, *, sweep_seconds: float = 5.0
) -> FastAPI:
    """Wire casework's database, topics, lease sweeper and HTTP routes."""
    rt = Runtime("casework", settings=settings, clock=clock, outbox_collections=[store.CASES])
    queues.load_queues()  # a broken queues.yaml stops the start, not the first claim
    rt.on_startup(lambda: store.ensure_indexes(rt.db))
    rt.on_startup(lambda: handlers.fill_waiting(rt))  # the queues' read model of an older database
    rt.on_startup(lambda: handlers.fill_loads(rt))  # the officers' load of an older database
    rt.on_startup(lambda: handlers.fill_notes(rt))  # the joins and holders of an older database
    # reports of different workers placed side by side, each worker's in order (as replicas holding
    # different partitions place them): placement is a few round trips, most of them waits
    rt.consume(topics.INCIDENTS, handlers.incident_handlers(rt), concurrent=rt.settings.key_concurrency)
    rt.consume(topics.ESCALATIONS, handlers.escalation_handlers(rt))
    rt.consume(topics.REPATRIATIONS, handlers.repatriation_handlers(rt))
    # its own case events, in a group of its own (`casework.casework.cases.v1`): the waiting cases'
    # and the officers' loads read models, many events at a time
    rt.consume(topics.CASES, handlers.case_handlers(rt), batch=handlers.follow_batch(rt))
    # Leases last minutes: a sweep every few seconds is plenty, and each sweep costs the
    # database two queries (claim-next also releases its own queue's expired claims).
    rt.background(lambda: handlers.sweep_forever(rt, every_seconds=sweep_seconds))
    if rt.settings.retention_days > 0:
        rt.background(
            lambda: retention.run_forever(
                lambda age: anonymise.anonymise_closed(rt, older_than=age),
                older_than=timedelta(days=rt.settings.retention_days),
                every_seconds=rt.settings.retention_every_seconds,
            )
        )
    return create_service_app(
        rt,
        title="Lindungi casework",
        description="Protection cases worked by the central protection desk.",
        routers=[views.router, views.queues_router],
    )
