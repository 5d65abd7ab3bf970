"""`lindungi replay SERVICE`: read models rebuilt from their topic equal the live ones, and live on."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy.cli import app as cli
from services.intake import store as intake_store
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation import store as repatriation_store
from services.repatriation.app import create_app as repatriation_app
from shared.mongo import connect
from shared.settings import Settings
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
