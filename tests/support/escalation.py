"""Helpers for escalation tests: other services' events, made by hand and put on their topics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.auth import dev_token
from shared.envelope import Envelope, Event
from shared.events.casework import CaseOpened
from shared.events.intake import IncidentAccepted, WorkerMatch
from shared.outbox import PENDING
from shared.service import Runtime
from shared.settings import Settings
from shared.vocab import Category, Severity
from tests.support.harness import envelopes, eventually, read_topic

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
OFFICER = {"authorization": f"Bearer {dev_token('officer-ani')}"}
SUPERVISOR = {"authorization": f"Bearer {dev_token('supervisor-dewi')}"}


def envelope(event: Event, *, time: datetime, key: str, id: str | None = None) -> Envelope:
    """An envelope as the owning service would publish it."""
    return Envelope(
        id=id or uuid.uuid4().hex,
        source="lindungi/test",
        type=event.type,
        subject=key,
        time=time,
        data=event.model_dump(mode="json"),
    )


async def send(settings: Settings, *items: tuple[Event, Envelope, str]) -> None:
    """Put (event, envelope, key) triples on their topics with one producer, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topic(event.topic.name), env.model_dump_json().encode(), key=key.encode()
            )
            for event, env, key in items
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


def case_opened(
    case_id: str | None = None,
    *,
    severity: Severity = Severity.MEDIUM,
    category: Category = Category.UNPAID_WAGES,
    non_procedural: bool = False,
    at: datetime = T0,
    incident_id: str | None = None,
) -> CaseOpened:
    return CaseOpened(
        case_id=case_id or uuid.uuid4().hex,
        incident_id=incident_id or uuid.uuid4().hex,
        worker_key="wk-" + uuid.uuid4().hex[:8],
        worker_id="w-1",
        non_procedural=non_procedural,
        mission_id="kbri-kuala-lumpur",
        country="MY",
        category=category,
        severity=severity,
        priority=2,
        opened_at=at,
    )


def incident(agency_id: str | None, *, at: datetime) -> IncidentAccepted:
    return IncidentAccepted(
        incident_id=uuid.uuid4().hex,
        mission_id="kbri-riyadh",
        country="SA",
        category=Category.UNPAID_WAGES,
        severity=Severity.MEDIUM,
        occurred_at=at,
        reported_at=at,
        worker_key="wk-" + uuid.uuid4().hex[:8],
        match=WorkerMatch(worker_id=None, non_procedural=False),
        agency_id=agency_id,
    )


async def published(
    settings: Settings, topic: str, *, timeout: float = 2.0, **match: Any
) -> list[dict[str, Any]]:
    """Envelopes on a topic whose data match the given fields."""
    records = await read_topic(settings, topic, timeout=timeout)
    return [e for e in envelopes(records) if all(e["data"].get(k) == v for k, v in match.items())]


async def loop_passes(*engines: Any, n: int = 2) -> None:
    """Wait until each engine's timer loop has finished n more passes: with n=2, at least one whole
    pass began after the call (a condition to wait on, where a test once slept)."""
    marks = [e.passes for e in engines]

    async def done() -> bool:
        return all(e.passes >= m + n for e, m in zip(engines, marks, strict=True))

    await eventually(done, timeout=30)


async def outbox_drained(rt: Runtime) -> None:
    """Wait until no document of the service holds an event its relay has yet to publish: what
    was decided is then on the broker, so reading a topic to its end sees all of it."""

    async def drained() -> bool:
        for name in rt.relay.collections:
            if await rt.db[name].count_documents({PENDING: True}, limit=1):
                return False
        return True

    await eventually(drained, timeout=30)
