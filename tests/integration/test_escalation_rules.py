"""escalation on the real broker and database, with a moved clock: deadlines, counts, once only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.escalation import store
from services.escalation.app import create_app
from services.escalation.engine import Escalation
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.casework import CaseAcknowledged, CaseStatus
from shared.settings import Settings
from shared.topics import ESCALATIONS, REGISTRY_COMMANDS, REPATRIATION_REQUESTS
from shared.vocab import Category, Severity
from tests.support.escalation import (
    OFFICER,
    T0,
    case_opened,
    envelope,
    incident,
    loop_passes,
    outbox_drained,
    published,
    send,
)
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration


def engine_of(app) -> Escalation:  # type: ignore[no-untyped-def]
    return app.state.escalation  # type: ignore[no-any-return]


async def chains_of(http, case_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = await http.get("/v1/chains", params={"case_id": case_id}, headers=OFFICER)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_critical_case_not_acknowledged_escalates_at_one_hour_not_before(settings: Settings) -> None:
    clock = ManualClock(T0)
    app = create_app(settings, clock, timer_poll_seconds=0.1)
    engine = engine_of(app)
    async with running(app) as http:
        opened = case_opened(severity=Severity.CRITICAL)
        await send(settings, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
        chains = await eventually(lambda: chains_of(http, opened.case_id))
        critical = next(c for c in chains if c["rule_id"] == "critical-ack-1h")
        assert critical["state"] == "pending"
        assert critical["due_at"].startswith("2026-01-05T09:00:00")

        clock.set(T0 + timedelta(minutes=59, seconds=59))
        assert await engine.fire_due() == 0
        await loop_passes(engine)  # the loop polls too: a whole pass of it at 59:59
        await outbox_drained(app.state.runtime)
        assert engine.fired == 0
        assert await published(settings, ESCALATIONS.name, timeout=0, case_id=opened.case_id) == []

        clock.set(T0 + timedelta(hours=1))

        async def escalations():
            got = await published(settings, ESCALATIONS.name, case_id=opened.case_id)
            return got if len(got) >= 2 else None

        got = await eventually(escalations)
        kinds = sorted((e["data"]["kind"], e["data"]["level"]) for e in got)
        assert kinds == [("escalate", 1), ("notify", 1)]  # a notification carries its stage's level
        assert all(e["data"]["rule_id"] == "critical-ack-1h" for e in got)
        # the chain moved on to its next stage, due an hour later
        critical = next(c for c in await chains_of(http, opened.case_id) if c["rule_id"] == "critical-ack-1h")
        assert critical["slot"] == 1 and critical["due_at"].startswith("2026-01-05T10:00:00")


async def test_acknowledged_at_59_minutes_never_escalates(settings: Settings) -> None:
    clock = ManualClock(T0)
    app = create_app(settings, clock, timer_poll_seconds=0.1)
    engine = engine_of(app)
    async with running(app) as http:
        opened = case_opened(severity=Severity.CRITICAL)
        ack = CaseAcknowledged(
            case_id=opened.case_id,
            status=CaseStatus.IN_PROGRESS,
            previous_status=CaseStatus.ASSIGNED,
            actor="officer-ani",
            at=T0 + timedelta(minutes=59),
        )
        await send(settings, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
        await eventually(lambda: chains_of(http, opened.case_id))
        clock.set(T0 + timedelta(minutes=59))
        await send(settings, (ack, envelope(ack, time=ack.at, key=ack.case_id), ack.case_id))

        async def cancelled():
            chains = await chains_of(http, opened.case_id)
            return [c for c in chains if c["rule_id"] == "critical-ack-1h" and c["state"] == "cancelled"]

        [chain] = await eventually(cancelled)
        assert {f["outcome"] for f in chain["firings"]} == {"cancelled"}
        clock.set(T0 + timedelta(hours=10))  # past every stage and repeat of the chain
        assert await engine.fire_due() == 0
        await loop_passes(engine)  # and a whole pass of the loop at 10 h
        await outbox_drained(app.state.runtime)
        assert engine.fired == 0
        assert await published(settings, ESCALATIONS.name, timeout=0, case_id=opened.case_id) == []


async def test_three_agency_incidents_in_30_days_flag_once_and_a_fourth_does_not(settings: Settings) -> None:
    start = T0 + timedelta(days=3)  # 2026-01-08: a fresh 30-day window starts on 2026-01-07
    clock = ManualClock(start)
    app = create_app(settings, clock, timer_poll_seconds=0.1)
    async with running(app):
        agency = "p3mi-" + uuid.uuid4().hex[:6]
        incs = [incident(agency, at=start + timedelta(days=d)) for d in (0, 6, 12, 20)]
        other = incident("p3mi-other", at=start)
        items = [(i, envelope(i, time=i.reported_at, key=i.worker_key), i.worker_key) for i in incs]
        db = app.state.runtime.db

        async def members(n: int):  # type: ignore[no-untyped-def]
            docs = await store.counters(db)
            return [d for d in docs if d["key"] == agency and len(d["members"]) >= n]

        await send(settings, *items[:2], (other, envelope(other, time=start, key="x"), "x"))
        await eventually(lambda: members(2))
        assert await published(settings, REGISTRY_COMMANDS.name, timeout=1.0) == []

        await send(settings, items[2])
        flags = await eventually(lambda: published(settings, REGISTRY_COMMANDS.name, subject_id=agency))
        assert len(flags) == 1 and flags[0]["data"]["subject_kind"] == "agency"

        await send(settings, items[3])
        await eventually(lambda: members(4))
        await outbox_drained(app.state.runtime)  # a second flag, if any, is on the broker now
        assert len(await published(settings, REGISTRY_COMMANDS.name, subject_id=agency)) == 1
        investigations = await published(settings, ESCALATIONS.name, subject_id=agency)
        assert [e["data"]["kind"] for e in investigations] == ["open_case"]


async def test_death_opens_one_remains_repatriation_even_when_delivered_twice(settings: Settings) -> None:
    clock = ManualClock(T0)
    app = create_app(settings, clock, timer_poll_seconds=0.1)
    seen: list[str] = []

    async def handled(env: Envelope) -> None:
        seen.append(env.id)

    app.state.runtime.after_handle.append(handled)
    async with running(app):
        opened = case_opened(category=Category.DEATH, severity=Severity.CRITICAL)
        env = envelope(opened, time=T0, key=opened.case_id)
        await send(settings, (opened, env, opened.case_id), (opened, env, opened.case_id))
        await eventually(lambda: asyncio.sleep(0, seen.count(env.id) == 2))
        requests = await eventually(
            lambda: published(settings, REPATRIATION_REQUESTS.name, case_id=opened.case_id)
        )
        await outbox_drained(app.state.runtime)  # a second request, if any, is on the broker now
        requests = await published(settings, REPATRIATION_REQUESTS.name, timeout=0, case_id=opened.case_id)
        assert len(requests) == 1
        assert requests[0]["data"]["kind"] == "remains" and requests[0]["data"]["requested_by"] == "rule"
        escalated = await published(settings, ESCALATIONS.name, case_id=opened.case_id, kind="escalate")
        assert [e["data"]["level"] for e in escalated] == [2]


async def test_timers_survive_a_restart_and_what_fell_due_while_down_fires_once(settings: Settings) -> None:
    clock = ManualClock(T0)
    opened = case_opened(severity=Severity.CRITICAL)
    first = create_app(settings, clock, timer_poll_seconds=0.1)
    async with running(first) as http:
        await send(settings, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
        await eventually(lambda: chains_of(http, opened.case_id))
    clock.set(T0 + timedelta(hours=2, minutes=30))  # both the 1 h and the 2 h stage fell due while down
    second = create_app(settings, clock, timer_poll_seconds=0.1)
    async with running(second):

        async def escalations():
            got = await published(settings, ESCALATIONS.name, case_id=opened.case_id, kind="escalate")
            return got if len(got) >= 2 else None

        await eventually(escalations)
        await engine_of(second).fire_due()
        await loop_passes(engine_of(second))
        await outbox_drained(second.state.runtime)
        got = await published(settings, ESCALATIONS.name, timeout=0, case_id=opened.case_id, kind="escalate")
        assert sorted(e["data"]["level"] for e in got) == [1, 2]  # each stage once, nothing more
