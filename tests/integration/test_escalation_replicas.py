"""Two replicas of escalation on the same topics and database: 1,000 due timers fire once in total."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from services.escalation import domain, store
from services.escalation.app import create_app
from services.escalation.domain import chain_doc
from shared.clock import ManualClock
from shared.settings import Settings
from shared.topics import ESCALATIONS
from shared.vocab import Severity
from tests.support.escalation import T0, case_opened
from tests.support.harness import envelopes, eventually, read_topic, running

pytestmark = pytest.mark.integration

N = 1000


async def test_two_replicas_fire_1000_due_timers_exactly_once(settings: Settings) -> None:
    clock = ManualClock(T0)
    a = create_app(settings, clock, timer_poll_seconds=0.5)
    b = create_app(settings, clock, timer_poll_seconds=0.5)
    async with running(a), running(b):
        db = a.state.runtime.db
        ea, eb = a.state.escalation, b.state.escalation
        # The chains the default rules start for 1,000 critical cases (evaluated exactly as the
        # handler does), stored in one bulk insert: the event path is covered elsewhere, and
        # on the shared FerretDB 1,000 events one by one would take minutes.
        docs = []
        for c in (case_opened(severity=Severity.CRITICAL) for _ in range(N)):
            ev = domain.Incoming.of(id=uuid.uuid4().hex, type=c.type, time=T0, data=c.model_dump(mode="json"))
            assert ev is not None
            for start in domain.evaluate(ea.rules, ea.version, ev).starts:
                if start.rule_id == "critical-ack-1h":
                    docs.append(chain_doc(start, created_at=T0))
        t = time.monotonic()
        await store.insert_chains(db, docs)
        print(f"inserted {len(docs)} chains in {time.monotonic() - t:.1f}s")
        assert await db[store.CHAINS].count_documents({}) == N
        clock.set(T0 + timedelta(hours=1))  # every critical chain's first stage is due now
        t = time.monotonic()
        await asyncio.gather(ea.fire_due(), eb.fire_due())

        async def all_fired() -> bool:
            return await db[store.DECIDED].count_documents({"kind": "slot", "outcome": "fired"}) >= N

        await eventually(all_fired, timeout=600, interval=1.0)
        print(f"all fired after {time.monotonic() - t:.1f}s")
        await asyncio.sleep(0.5)  # both loops keep polling: nothing more may fire
        assert await db[store.DECIDED].count_documents({"kind": "slot", "outcome": "fired"}) == N
        assert ea.fired + eb.fired == N
        print(f"replica a fired {ea.fired}, replica b fired {eb.fired} in {time.monotonic() - t:.1f}s")

        records = await read_topic(settings, ESCALATIONS.name, min_count=2 * N, timeout=300)
        print(f"{len(records)} published after {time.monotonic() - t:.1f}s")
        data = [e["data"] for e in envelopes(records)]
        assert len(data) == 2 * N  # escalate and notify, once per case
        assert len({d["action_id"] for d in data}) == 2 * N
        per_case = Counter(d["case_id"] for d in data if d["kind"] == "escalate")
        assert set(per_case.values()) == {1} and len(per_case) == N
