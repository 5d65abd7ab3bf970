"""The repair: a decider that died between deciding and emitting leaves its decision unmarked, and
another replica emits it after the grace period, from the events the decision keeps.

Both kinds of decision that carry events are repaired (a firing and a withdrawal: before, the
repair read firings only, and a withdrawal whose decider died was never published), and the read
of what waits is served by an index whatever the number of decisions (before, it read every
decision of the year at each pass, on MongoDB as on FerretDB).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from services.escalation import store
from services.escalation.app import create_app
from shared.clock import ManualClock
from shared.events.escalation import EscalationWithdrawn
from shared.mongo import Doc
from shared.settings import Settings
from shared.topics import ESCALATIONS
from tests.integration.test_database_field_index import _served_by_an_index
from tests.integration.test_database_id_index import _explain
from tests.support.escalation import T0
from tests.support.harness import envelopes, read_topic, running

pytestmark = pytest.mark.integration


async def test_a_decision_left_unemitted_is_emitted_by_the_repair_once(settings: Settings) -> None:
    app = create_app(settings, ManualClock(T0), timer_loop=False)
    async with running(app):
        rt, engine = app.state.runtime, app.state.escalation
        db = rt.db
        long_ago = time.time() - engine.emit_grace_seconds - 60

        def decision(n: int, outcome: str, **over: object) -> Doc:
            ev = EscalationWithdrawn(
                case_id=f"case-repair-{n}",
                chain_id=f"chain-repair-{n}",
                rule_id="ack-deadline",
                stages=["first"],
                met_at=T0,
                ended_by=f"event-{n}",
                undone=[],
                not_undone=[],
                at=T0 + timedelta(minutes=n),
            )
            entry = rt.outbox.entry(ev, key=ev.case_id, id=f"repair-{n}")
            doc: Doc = {"_id": f"decision-{n}", "outcome": outcome, "events": [entry]}
            return doc | {"emitted": False, "decided_wall": long_ago} | over

        await db[store.DECIDED].insert_many(
            [
                decision(1, "fired"),  # its decider died before emitting
                decision(2, "withdrawn"),  # likewise
                decision(3, "fired", decided_wall=time.time()),  # a live decider, within its grace
                decision(4, "fired", emitted=True),  # emitted long ago
                {"_id": "decision-5", "outcome": "cancelled", "kind": "slot"},  # carries no events
            ]
            + [decision(100 + i, "fired", emitted=True) for i in range(200)]
        )

        query = store.unemitted_query(time.time() - engine.emit_grace_seconds)
        explained = await _explain(db[store.DECIDED], query)
        assert _served_by_an_index(explained, "decided"), explained["queryPlanner"]

        assert await engine.repair() == 2
        assert await engine.repair() == 0  # marked: a second pass emits nothing again
        five = [f"decision-{n}" for n in range(1, 6)]
        marked = {
            d["_id"]: d.get("emitted") for d in await db[store.DECIDED].find({"_id": {"$in": five}}).to_list()
        }
        assert marked == {
            "decision-1": True,
            "decision-2": True,
            "decision-3": False,
            "decision-4": True,
            "decision-5": None,
        }

        records = await read_topic(settings, ESCALATIONS.name, min_count=2, timeout=30)
        ids = sorted(e["id"] for e in envelopes(records))
        assert ids == ["repair-1", "repair-2"]
