"""`lindungi replay SERVICE`: read models rebuilt from their topics equal the live ones, and live on."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy.cli import app as cli
from services.escalation import store as escalation_store
from services.escalation.app import create_app as escalation_app
from services.escalation.engine import DEFAULT_RULES
from services.intake import store as intake_store
from services.intake.app import create_app as intake_app
from services.readmodels import READ_MODELS
from services.registry.app import create_app as registry_app
from services.repatriation import store as repatriation_store
from services.repatriation.app import create_app as repatriation_app
from shared.clock import ManualClock
from shared.mongo import connect
from shared.replay import rebuild
from shared.settings import Settings
from tests.support.escalation import T0, envelope, incident, send
from tests.support.harness import eventually, running
from tests.support.registry_data import OPERATOR, departure

pytestmark = pytest.mark.integration

PEOPLE = [
    {"full_name": "Siti Rahayu", "nik": "3171014501940001", "passport_number": "C1234567"},
    {"full_name": "Dewi Lestari", "nik": "3273015208900002", "passport_number": "C2345678"},
    {"full_name": "Budi Santoso", "nik": "3578011003880003", "passport_number": "C3456789", "sex": "M"},
]
MODELS = {
    "intake": (intake_store.DEPARTURES, intake_store.DEPARTURE_KEYS),
    "repatriation": (repatriation_store.DEPARTURES,),
}


async def snapshot(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    client = connect(settings)
    try:
        out = {}
        for service, names in MODELS.items():
            db = client[settings.database(service)]
            for name in names:
                docs = await db[name].find({}).sort("_id", 1).to_list()
                for d in docs:
                    if "departure_ids" in d:
                        d["departure_ids"] = sorted(d["departure_ids"])
                out[f"{service}.{name}"] = docs
        return out
    finally:
        await client.close()


async def test_replay_rebuilds_projections_equal_to_the_live_ones(settings: Settings) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "COLUMNS": "200",
    }
    async with contextlib.AsyncExitStack() as stack:
        reg = await stack.enter_async_context(running(registry_app(settings)))
        await stack.enter_async_context(running(intake_app(settings)))
        await stack.enter_async_context(running(repatriation_app(settings)))
        ids = []
        for p in PEOPLE:
            r = await reg.post("/v1/departures", json=departure(status="registered", **p), headers=OPERATOR)
            assert r.status_code == 201, r.text
            ids.append(r.json()["departure_id"])
        r = await reg.patch(f"/v1/departures/{ids[0]}", json={"status": "departed"}, headers=OPERATOR)
        assert r.status_code == 200 and r.json()["version"] == 2

        async def projected() -> dict[str, Any] | None:
            snap = await snapshot(settings)
            done = all(len(snap[f"{s}.departures"]) == 3 for s in MODELS) and all(
                d["version"] == 2 for s in MODELS for d in snap[f"{s}.departures"] if d["_id"] == ids[0]
            )
            return snap if done else None

        live = await eventually(projected)
        assert len(live["intake.departure_keys"]) >= 3

        # the live read models are damaged (a lost document, a stale one); replay rebuilds them
        client = connect(settings)
        try:
            await client[settings.database("intake")][intake_store.DEPARTURES].delete_one({"_id": ids[1]})
            await client[settings.database("repatriation")][repatriation_store.DEPARTURES].update_one(
                {"_id": ids[0]}, {"$set": {"status": "registered", "version": 1}}
            )
        finally:
            await client.close()
        assert await snapshot(settings) != live

        for service in MODELS:
            result = await asyncio.to_thread(CliRunner().invoke, cli, ["replay", service], env=env)
            assert result.exit_code == 0, result.output
            assert "registry.departures.v1" in result.stdout and "4" in result.stdout  # 4 events replayed
        assert await snapshot(settings) == live
        client = connect(settings)
        try:
            for service in MODELS:
                names = await client[settings.database(service)].list_collection_names()
                assert not [n for n in names if "__" in n], names  # no fresh or old collection left
        finally:
            await client.close()

        # the services go on projecting into the switched-in collections
        r = await reg.patch(f"/v1/departures/{ids[2]}", json={"status": "departed"}, headers=OPERATOR)
        assert r.status_code == 200

        async def moved_on() -> bool:
            snap = await snapshot(settings)
            return all(
                d["version"] == 2 for s in MODELS for d in snap[f"{s}.departures"] if d["_id"] == ids[2]
            )

        await eventually(moved_on)

    unknown = CliRunner().invoke(cli, ["replay", "casework"], env=env)
    assert unknown.exit_code == 2 and "no read model" in unknown.output


def _counters(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Counter buckets by id, members and counted marks as sets (their order is arrival order)."""
    return {
        d["_id"]: {
            **{k: v for k, v in d.items() if k not in ("members", "counted")},
            "members": sorted((m["id"], m["at"]) for m in d.get("members", [])),
            "counted": sorted(d.get("counted", [])),
        }
        for d in docs
    }


async def test_replay_recounts_escalation_counters_equal_to_the_live_ones(settings: Settings) -> None:
    """Counted live under two rule sets (the second loaded mid-stream), damaged, recounted: equal,
    nothing fires again, and a count that arrives during the rebuild is kept."""
    start = T0 + timedelta(days=3)
    clock = ManualClock(start)
    app = escalation_app(settings, clock, timer_poll_seconds=0.1)
    model = READ_MODELS["escalation"][0]
    async with running(app):
        engine, db = app.state.escalation, app.state.runtime.db
        a, b, c, d, late = (f"p3mi-{n}-{uuid.uuid4().hex[:4]}" for n in "abcde")

        async def counted(*expected: tuple[str, int]) -> dict[str, dict[str, Any]] | None:
            docs = _counters(await db[escalation_store.COUNTERS].find({}).to_list())
            have: dict[str, int] = {}
            for doc in docs.values():
                have[doc["key"]] = have.get(doc["key"], 0) + len(doc["members"])
            return docs if all(have.get(k, 0) >= n for k, n in expected) else None

        def items(*incs: Any) -> list[Any]:
            return [(i, envelope(i, time=i.reported_at, key=i.worker_key), i.worker_key) for i in incs]

        # rule set 1 (3 within 30 days): a three times in 12 days (flagged), b twice, c twice
        await send(
            settings,
            *items(*(incident(a, at=start + timedelta(days=n)) for n in (0, 6, 12))),
            *items(*(incident(b, at=start + timedelta(days=n)) for n in (1, 9))),
            *items(*(incident(c, at=start + timedelta(days=n)) for n in (2, 20))),
        )
        await eventually(lambda: counted((a, 3), (b, 2), (c, 2)))
        # rule set 2 from day 25 (2 within 10 days): recounting b's first two under it would flag b
        clock.set(start + timedelta(days=25))
        second = DEFAULT_RULES.read_text().replace("at_least: 3, within: 30d", "at_least: 2, within: 10d")
        assert second != DEFAULT_RULES.read_text()
        assert await engine.load(second, by="supervisor-dewi", note="a shorter window") == 2
        await send(
            settings,
            *items(*(incident(d, at=start + timedelta(days=n)) for n in (26, 28))),
            *items(incident(b, at=start + timedelta(days=27))),
        )
        await eventually(lambda: counted((a, 3), (b, 3), (c, 2), (d, 2)))

        async def decisions() -> list[Any]:
            return await escalation_store.window_decisions(db)

        async def both_fired() -> list[Any] | None:
            got = await decisions()
            return got if len(got) >= 2 else None

        fired = await eventually(both_fired)
        assert sorted(f["key"] for f in fired) == sorted([a, d])

        async def marked() -> dict[str, dict[str, Any]] | None:
            docs = await counted()  # a firing is decided first, its members marked counted after
            return docs if docs and {v["key"] for v in docs.values() if v["counted"]} == {a, d} else None

        live = await eventually(marked)
        assert {doc["rule_id"] for doc in live.values()} == {"agency-pattern-30d"}

        # damage: a bucket lost, the others' members and counted marks lost
        await db[escalation_store.COUNTERS].delete_one({"_id": sorted(live)[0]})
        await db[escalation_store.COUNTERS].update_many({}, {"$set": {"members": [], "counted": []}})
        assert await counted() != live

        later = [incident(late, at=start + timedelta(days=n)) for n in (29, 30)]

        async def three_fired() -> list[Any] | None:
            got = await decisions()
            return got if len(got) >= 3 else None

        async def meanwhile() -> None:
            # counted live, and a firing, while the fresh collection is built: the switch drops
            # the old collection with them; the catch-up counts them again and marks them counted
            await send(settings, *items(*later))
            await eventually(three_fired)

            async def late_marked() -> bool:
                docs = await counted((late, 2))
                return bool(docs and any(v["counted"] for v in docs.values() if v["key"] == late))

            await eventually(late_marked)

        report = await rebuild(settings, db, model, meanwhile=meanwhile)
        assert report.events == 10 and report.caught_up == 2
        assert report.settled == {"members counted by kept firings": 7, "windows owed a firing": 0}
        after = await counted()
        assert after is not None
        kept = {k: v for k, v in after.items() if v["key"] != late}
        assert kept == live
        [arrived] = [v for v in after.values() if v["key"] == late]
        assert arrived["members"] == sorted((i.incident_id, i.reported_at) for i in later)
        assert arrived["counted"] == sorted(i.incident_id for i in later)
        assert len(await decisions()) == 3  # nothing fired again

        # the CLI does the same; no fresh or old collection is left behind
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "MONGODB_URI": settings.mongodb_uri,
            "LINDUNGI_NAMESPACE": settings.namespace,
            "COLUMNS": "200",
        }
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["replay", "escalation"], env=env)
        assert result.exit_code == 0, result.output
        assert "windows owed a firing: 0" in result.stdout
        assert await counted() == after
        names = await db.list_collection_names()
        assert not [n for n in names if "__" in n], names
        assert len(await decisions()) == 3
