"""Deadlines that are complete, on the real broker and database with a moved clock: the resolve
deadline after acknowledgement, sliding counting windows, older triggers, late cancels."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.casework.app import create_app as create_casework
from services.escalation import evaluation, notification_store, ruleset, store
from services.escalation.app import create_app as create_escalation
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.casework import CaseAcknowledged, CaseStatus
from shared.events.repatriation import RepatriationKind, StepChanged
from shared.settings import Settings
from shared.topics import ESCALATIONS, REGISTRY_COMMANDS
from shared.vocab import Severity
from tests.support.casework import incident as accepted
from tests.support.casework import publish_incident
from tests.support.escalation import OFFICER, T0, case_opened, envelope, incident, published, send
from tests.support.harness import eventually, running
from tests.support.receivers import smtp_server

pytestmark = pytest.mark.integration


async def holds(check: Callable[[], Any]) -> Any:
    """A plain condition as the async check `eventually` polls."""
    return check()


async def chains(http, case_id: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    params = {"case_id": case_id} if case_id else {}
    r = await http.get("/v1/chains", params=params, headers=OFFICER)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_an_acknowledged_critical_case_not_resolved_within_3_days_escalates(settings: Settings) -> None:
    clock = ManualClock(T0)
    escalation = create_escalation(settings, clock, timer_poll_seconds=0.1)
    async with running(create_casework(settings, clock)) as cw, running(escalation) as esc:
        report = accepted(severity="critical")
        await publish_incident(settings, report)

        async def case() -> dict | None:  # type: ignore[type-arg]
            r = await cw.get("/v1/cases", params={"incident_id": report.incident_id}, headers=OFFICER)
            return r.json()[0] if r.json() else None

        cid = (await eventually(case))["case_id"]
        for step in ("triage", "claim", "acknowledge"):
            clock.advance(timedelta(minutes=5))
            r = await cw.post(f"/v1/cases/{cid}/{step}", json={}, headers=OFFICER)
            assert r.status_code == 200, r.text
        acked = clock.now()

        async def resolve_chain() -> dict | None:  # type: ignore[type-arg]
            return next((c for c in await chains(esc, cid) if c["rule_id"] == "resolve-critical-3d"), None)

        chain = await eventually(resolve_chain)
        assert chain["state"] == "pending"
        assert datetime.fromisoformat(chain["due_at"]) == acked + timedelta(days=3)
        # the acknowledgement ended the acknowledge deadline, the triage the triage deadline
        ended = {c["rule_id"]: c["state"] for c in await chains(esc, cid)}
        assert ended["critical-ack-1h"] == "cancelled" and ended["triage-24h"] == "cancelled"

        clock.set(acked + timedelta(days=3) - timedelta(seconds=1))
        assert await escalation.state.escalation.fire_due() == 0
        clock.set(acked + timedelta(days=3))

        async def escalated() -> dict | None:  # type: ignore[type-arg]
            doc = (await cw.get(f"/v1/cases/{cid}", headers=OFFICER)).json()
            return doc if doc["escalation_level"] == 1 else None

        doc = await eventually(escalated)
        [entry] = [e for e in doc["timeline"] if e["kind"] == "escalated"]
        assert entry["by"] == "rule:resolve-critical-3d"
        assert "not resolved within 3 days" in entry["reason"]


async def test_three_incidents_within_30_days_across_a_window_boundary_flag_the_agency(
    settings: Settings,
) -> None:
    # 30-day buckets are epoch-aligned: one boundary falls on 2026-01-07.
    day = datetime(2026, 1, 1, 12, tzinfo=UTC)
    clock = ManualClock(day)
    app = create_escalation(settings, clock, timer_poll_seconds=0.1)
    handled: list[str] = []

    async def seen(env: Envelope) -> None:
        handled.append(env.id)

    app.state.runtime.after_handle.append(seen)
    async with running(app):
        close, spread = "p3mi-" + uuid.uuid4().hex[:6], "p3mi-" + uuid.uuid4().hex[:6]
        incs = [incident(close, at=day + timedelta(days=d)) for d in (0, 9, 19)]  # 19 days, across 01-07
        incs += [incident(spread, at=day + timedelta(days=d)) for d in (0, 19, 35)]  # 35 days apart
        await send(
            settings, *[(i, envelope(i, time=i.reported_at, key=i.worker_key), i.worker_key) for i in incs]
        )
        await eventually(lambda: holds(lambda: len(handled) >= 6))

        flags = await eventually(lambda: published(settings, REGISTRY_COMMANDS.name, subject_id=close))
        assert len(flags) == 1 and flags[0]["data"]["subject_kind"] == "agency"
        decided = await app.state.runtime.db[store.DECIDED].find({"kind": "window"}).to_list()
        assert [(d["key"], sorted(d["members"])) for d in decided] == [
            (close, sorted(i.incident_id for i in incs[:3]))
        ]


async def test_an_older_trigger_redelivered_never_replaces_the_newer_chain(settings: Settings) -> None:
    clock = ManualClock(T0)
    app = create_escalation(settings, clock, timer_poll_seconds=0.1)
    handled: list[str] = []

    async def seen(env: Envelope) -> None:
        handled.append(env.id)

    app.state.runtime.after_handle.append(seen)
    async with running(app) as http:
        rid = uuid.uuid4().hex

        def step(at: datetime, due: datetime) -> StepChanged:
            return StepChanged(
                repatriation_id=rid,
                kind=RepatriationKind.LIVING,
                step="travel_document",
                status="active",
                owner="mission",
                due_at=due,
                actor="desk",
                at=at,
            )

        first, newer = step(T0, T0 + timedelta(days=2)), step(T0 + timedelta(hours=1), T0 + timedelta(days=5))
        env_first = envelope(first, time=first.at, key=rid)
        env_newer = envelope(newer, time=newer.at, key=rid)
        older_late = step(T0 + timedelta(minutes=30), T0 + timedelta(days=1))  # older, arriving last
        env_late = envelope(older_late, time=older_late.at, key=rid)
        await send(settings, (first, env_first, rid), (newer, env_newer, rid))
        await eventually(lambda: holds(lambda: env_newer.id in handled))
        await send(
            settings, (first, env_first, rid), (older_late, env_late, rid)
        )  # a redelivery, then an older one
        await eventually(lambda: holds(lambda: handled.count(env_first.id) == 2 and env_late.id in handled))

        listed = await chains(http)
        live = [c for c in listed if c["state"] == "pending"]
        assert len(live) == 1 and datetime.fromisoformat(live[0]["due_at"]) == newer.due_at
        states = sorted(c["state"] for c in listed)
        assert states == ["pending", "superseded", "superseded"]


async def test_a_chain_linked_to_its_subject_but_never_stored_starts_when_its_trigger_comes_again(
    settings: Settings,
) -> None:
    """A crash between noting a chain under its subject and inserting it leaves a dangling link:
    the trigger's redelivery, meeting its own chain as the rule's latest, must still store it."""
    app = create_escalation(settings, ManualClock(T0), timer_poll_seconds=0.1)
    async with running(app) as http:
        engine = app.state.escalation
        opened = case_opened(severity=Severity.CRITICAL)
        env = envelope(opened, time=opened.opened_at, key=opened.case_id)
        ev = ruleset.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)
        assert ev is not None
        starts = evaluation.evaluate(engine.rules, engine.version, ev).starts
        assert {s.rule_id for s in starts} >= {"triage-24h", "critical-ack-1h"}
        for s in starts:  # the first delivery got this far, then died
            assert await store.link_subject(engine.rt.db, s.subject, s.rule_id, s.id) == (None, False)
        await send(settings, (opened, env, opened.case_id))

        async def stored() -> list[dict] | None:  # type: ignore[type-arg]
            listed = await chains(http, opened.case_id)
            return listed if len(listed) == len(starts) else None

        listed = await eventually(stored)
        assert {c["chain_id"] for c in listed} == {s.id for s in starts}
        assert {c["state"] for c in listed} == {"pending"}


async def test_an_older_trigger_decided_on_a_read_from_before_a_newer_link_never_replaces_it(
    settings: Settings,
) -> None:
    """Two triggers of one rule and subject side by side (a worker's chains, started by events of
    two cases: different keys, handled at once): the older one read the subject before the newer
    one linked its chain. Its link is refused (the rule's latest moved), it reads again, and its
    chain is recorded as superseded; the newer chain stays live."""
    app = create_escalation(settings, ManualClock(T0), timer_poll_seconds=0.1)
    async with running(app):
        engine = app.state.escalation
        db = engine.rt.db
        opened = case_opened(severity=Severity.CRITICAL)
        env = envelope(opened, time=opened.opened_at, key=opened.case_id)
        ev = ruleset.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)
        assert ev is not None
        [newer] = [
            s
            for s in evaluation.evaluate(engine.rules, engine.version, ev).starts
            if s.rule_id == "triage-24h"
        ]
        older = dataclasses.replace(
            newer, id=f"{newer.id}-older", trigger="older-event", trigger_at=T0 - timedelta(minutes=5)
        )
        read_before = await store.subject_docs(db, [newer.subject])  # the older trigger's read
        assert await engine.start(newer)
        assert not await engine.start(older, read_before)
        subject = (await store.subject_docs(db, [newer.subject]))[newer.subject]
        assert store.latest_of(subject, newer.rule_id) == newer.id
        assert await store.live_chain(db, newer.id) is not None, "the newer chain is not superseded"
        assert await store.live_chain(db, older.id) is None
        closed = await db[store.CLOSED].find_one({"_id": older.id})
        assert closed is not None and closed["state"] == "superseded"


async def test_an_acknowledgement_that_comes_late_withdraws_what_it_can_and_says_what_stands(
    settings: Settings, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    with smtp_server() as (box, port):
        box.answers = ["451 try again later"] * 10  # the first notification stays undelivered
        path = tmp_path / "channels.yaml"
        path.write_text(
            "contacts: {desk: {email: [desk@lindungi.test]}}\nroutes: [{to: supervisor, contacts: [desk]}]\n"
        )
        s = settings.model_copy(
            update={"escalation_channels": str(path), "smtp_port": port, "notify_backoff_seconds": 3600.0}
        )
        app = create_escalation(s, clock, timer_poll_seconds=0.1)
        async with running(app) as http:
            opened = case_opened(severity=Severity.CRITICAL)
            await send(s, (opened, envelope(opened, time=T0, key=opened.case_id), opened.case_id))
            await eventually(lambda: chains(http, opened.case_id))
            clock.set(T0 + timedelta(hours=1))  # the 1 h stage fires: escalate 1, notify supervisor
            await eventually(lambda: holds(lambda: box.refused >= 1))

            # ...but the case had been acknowledged at 59 minutes; the event comes late
            clock.set(T0 + timedelta(hours=1, minutes=5))
            ack = CaseAcknowledged(
                case_id=opened.case_id,
                status=CaseStatus.IN_PROGRESS,
                previous_status=CaseStatus.ASSIGNED,
                actor="officer-ani",
                severity=Severity.CRITICAL,
                at=T0 + timedelta(minutes=59),
            )
            await send(s, (ack, envelope(ack, time=ack.at, key=ack.case_id), ack.case_id))

            async def told(*kinds: str) -> list[dict] | None:  # type: ignore[type-arg]
                got = await published(s, ESCALATIONS.name, case_id=opened.case_id)
                return got if set(kinds) <= {e["type"].split(".")[2] for e in got} else None

            # the notification waiting for its retry (an hour away) says so at once, with no clock moved
            got = await eventually(lambda: told("withdrawn", "notification"))
            [withdrawn] = [e["data"] for e in got if e["type"] == "lindungi.escalation.withdrawn.v1"]
            assert withdrawn["rule_id"] == "critical-ack-1h" and withdrawn["stages"] == ["s0r0"]
            assert any(u.startswith("s0r0 notify:supervisor") for u in withdrawn["undone"])
            assert any("stages not yet fired cancelled: s1r0" in u for u in withdrawn["undone"])
            assert [x for x in withdrawn["not_undone"] if "escalate:1" in x and "stands" in x]
            [note] = [e["data"] for e in got if e["type"] == "lindungi.escalation.notification.v1"]
            assert note["status"] == "withdrawn" and note["attempts"] == 1
            clock.advance(timedelta(hours=5))
            await app.state.notifier.deliver_due()
            assert box.messages == [] and box.refused == 1  # never tried again

            async def listed() -> list[dict] | None:  # type: ignore[type-arg]
                r = await http.get("/v1/notifications", params={"case_id": opened.case_id}, headers=OFFICER)
                got = r.json()
                return got if got and all(n["state"] == "withdrawn" for n in got) else None

            [n] = await eventually(listed)
            assert n["notification_id"] == note["notification_id"]
            deliveries = app.state.runtime.db[notification_store.DELIVERIES]

            async def dropped() -> bool:
                # folding writes the record, then drops the delivery: the record can be read
                # withdrawn a moment before the delivery is gone (a loaded CI run saw it)
                return await deliveries.find_one({"_id": n["notification_id"]}) is None

            assert await eventually(dropped)
