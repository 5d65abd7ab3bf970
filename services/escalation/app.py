"""escalation service: `uvicorn --factory services.escalation.app:create_app --port 8004`."""

from __future__ import annotations

from fastapi import FastAPI

from services.escalation import handlers, notification_store, store, views
from services.escalation.engine import Escalation
from services.escalation.notifier import Notifier
from shared import topics
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

**Notify and refer actions are delivered**: by email (SMTP) and signed webhooks (HMAC-SHA256,
header `X-Lindungi-Signature: t=<unix>,sha256=<hex>` over `<t>.<body>`), routed by the channel
file (rules/channels.yaml) per recipient, rule, region and level; at least once, with retries
and backoff; each outcome (sent, or failed after N tries) goes onto the case timeline.
`GET /v1/notifications?case_id=` lists a case's notifications.
"""


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    timer_poll_seconds: float = 0.5,
    timer_loop: bool = True,
) -> FastAPI:
    """Wire escalation's database, topics, timer loop and HTTP routes."""
    rt = Runtime(
        "escalation",
        settings=settings,
        clock=clock,
        outbox_collections=[store.EMISSIONS, notification_store.DELIVERIES],
    )
    engine = Escalation(rt, poll_seconds=timer_poll_seconds)
    notifier = Notifier(rt, poll_seconds=timer_poll_seconds)
    notifier.startup()  # a broken channel file stops the start
    rt.on_startup(engine.startup)
    # One case event at a time (not `concurrent`, as casework's placement is): a rule may start a
    # chain on a subject other than the case (a worker), whose triggers then come from several
    # cases at once, and `Escalation.start` decides on a chain that another start may have linked
    # but not yet stored (docs/escalation.md). Across replicas that race stands (noted).
    rt.consume(topics.CASES, handlers.case_handlers(rt, engine))
    rt.consume(topics.INCIDENTS, handlers.incident_handlers(rt, engine))
    rt.consume(topics.DEPARTURES, handlers.departure_handlers(rt, engine))
    rt.consume(topics.REPATRIATIONS, handlers.repatriation_handlers(rt, engine))
    # Its own actions, once published: notify and refer become deliveries (at least once).
    # (its consumer group is `escalation.<topic>` like every other: tools read the topic from the name)
    rt.consume(topics.ESCALATIONS, handlers.action_handlers(rt, notifier))
    if timer_loop:
        rt.background(engine.run)
        rt.background(notifier.run)
    app = create_service_app(rt, title="Lindungi escalation", description=DESCRIPTION, routers=[views.router])
    app.state.escalation = engine
    app.state.notifier = notifier
    return app
