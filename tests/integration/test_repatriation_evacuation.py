"""Evacuations on the real broker and database: 10,000 workers fanned out and tracked."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.repatriation import commands, plans, store
from services.repatriation.app import create_app
from services.repatriation.steps import WorkflowRequest
from shared.clock import ManualClock
from shared.events.registry import DepartureStatus
from shared.events.repatriation import RepatriationKind
from shared.settings import Settings
from shared.topics import DEPARTURES
from tests.support.harness import eventually, running
from tests.support.repatriation import auth, departure, envelope_bytes, produce_many

pytestmark = pytest.mark.integration

DESK, KL, DKI = auth("officer-ani"), auth("kbri-kuala-lumpur"), auth("region-dki")
N = 10_000


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    yield client[settings.database("repatriation")]
    await client.close()


async def test_evacuation_of_ten_thousand_workers(
    settings: Settings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running(create_app(settings, ManualClock())) as c:
        # The projection, bulk-written through the very function the DepartureRecorded handler uses.
        assert await store.record_departures(db, [departure(i) for i in range(N)]) == N
        others = [departure(i, country="KR", prefix="kr") for i in range(50)]
        others += [departure(i, status=DepartureStatus.RETURNED, prefix="back") for i in range(30)]
        await store.record_departures(db, others)
        # And the handler path over Kafka: 20 workers, one of whom returned (v3 arrives before a stale v2).
        items = [
            (f"k-{i:06d}".encode(), envelope_bytes(departure(i, prefix="k"), key=f"k-{i}")) for i in range(20)
        ]
        back = departure(0, prefix="k", status=DepartureStatus.RETURNED, version=3)
        stale = departure(0, prefix="k", status=DepartureStatus.ACTIVE_ABROAD, version=2)
        items += [(b"k-000000", envelope_bytes(back, key="k")), (b"k-000000", envelope_bytes(stale, key="k"))]
        items.append(items[5])  # a redelivery
        await produce_many(settings, DEPARTURES.name, items)

        async def projected() -> bool:
            k0 = await db[store.DEPARTURES].find_one({"_id": "d-k-000000"})
            n = await db[store.DEPARTURES].count_documents({"worker_id": {"$regex": "^k-"}})
            return n == 20 and k0 is not None and k0["version"] == 3

        await eventually(projected, timeout=90)
        k0 = await db[store.DEPARTURES].find_one({"_id": "d-k-000000"})
        assert k0 is not None and k0["status"] == "returned"

        t0 = time.perf_counter()
        r = await c.post(
            "/v1/evacuations",
            json={"country": "MY", "reason": "flooding; shelters opened", "request_id": "evac-my-1"},
            headers=DESK,
        )
        took = time.perf_counter() - t0
        assert r.status_code == 201, r.text
        evac = r.json()
        eid = evac["repatriation_id"]
        print(f"\nevacuation fan-out over {N + 19} workers: {took:.2f}s")
        assert evac["fanout"]["status"] == "done" and evac["fanout"]["count"] == N + 19
        assert evac["current_step"] == "workers_located"
        ident = next(s for s in evac["steps"] if s["name"] == "workers_identified")
        assert ident["status"] == "done" and str(N + 19) in ident["evidence"][0]

        # The same request again is the same evacuation; another one for the same country is refused.
        again = await c.post(
            "/v1/evacuations",
            json={"country": "MY", "reason": "again", "request_id": "evac-my-1"},
            headers=DESK,
        )
        assert again.status_code == 200 and again.json()["repatriation_id"] == eid
        other = await c.post("/v1/evacuations", json={"country": "MY", "reason": "second"}, headers=DESK)
        assert other.status_code == 409
        assert await db[store.EVACUEES].count_documents({"evacuation_id": eid}) == N + 19

        progress = (await c.get(f"/v1/evacuations/{eid}/progress", headers=KL)).json()
        assert progress["total"] == N + 19
        assert progress["by_status"] == {
            "unaccounted": N + 19,
            "located": 0,
            "safe": 0,
            "in_transit": 0,
            "home": 0,
        }

        # Missions report workers, in bulk; only moves the table allows happen.
        located = [f"w-{i:06d}" for i in range(30)]
        r = await c.post(
            f"/v1/evacuations/{eid}/workers/status",
            json={"worker_ids": located, "status": "located"},
            headers=KL,
        )
        assert r.json() == {"requested": 30, "moved": 30}
        r = await c.post(
            f"/v1/evacuations/{eid}/workers/status",
            json={"worker_ids": located[:12], "status": "safe", "note": "embassy shelter"},
            headers=KL,
        )
        assert r.json()["moved"] == 12
        r = await c.post(
            f"/v1/evacuations/{eid}/workers/status",
            json={"worker_ids": [f"w-{i:06d}" for i in range(200, 205)], "status": "in_transit"},
            headers=DESK,
        )
        assert r.json()["moved"] == 0  # unaccounted workers cannot be in transit
        r = await c.post(
            f"/v1/evacuations/{eid}/workers/status",
            json={"worker_ids": located[:10], "status": "in_transit"},
            headers=auth("kbri-seoul"),
        )
        assert r.status_code == 404  # another mission does not see it

        # Registry records a return: that worker (one of the safe ones) is home.
        await produce_many(
            settings,
            DEPARTURES.name,
            [
                (
                    b"w-000001",
                    envelope_bytes(departure(1, status=DepartureStatus.RETURNED, version=2), key="w"),
                )
            ],
        )

        async def one_home() -> dict[str, Any] | None:
            p = (await c.get(f"/v1/evacuations/{eid}/progress", headers=DESK)).json()
            return p if p["by_status"]["home"] == 1 else None

        # (a loaded machine's FerretDB reads the 10,019 evacuees per progress poll: poll slowly)
        p = await eventually(one_home, timeout=120, interval=1.0)
        assert p["by_status"] == {
            "unaccounted": N + 19 - 30,
            "located": 18,
            "safe": 11,
            "in_transit": 0,
            "home": 1,
        }
        assert p["total"] == N + 19

        by_prov = (await c.get(f"/v1/evacuations/{eid}/progress?by_province=true", headers=DESK)).json()
        assert sum(sum(v.values()) for v in by_prov["by_province"].values()) == N + 19
        dki = (await c.get(f"/v1/evacuations/{eid}/progress", headers=DKI)).json()
        assert dki["total"] == sum(by_prov["by_province"]["DKI Jakarta"].values()) and 0 < dki["total"] < N
        safe = (await c.get(f"/v1/evacuations/{eid}/workers?status=safe&limit=1000", headers=DESK)).json()
        assert sorted(w["worker_id"] for w in safe) == [w for w in located[:12] if w != "w-000001"]
        region = (await c.get("/v1/region/returns", headers=DKI)).json()
        assert sum(region["evacuees_not_home"].values()) == dki["total"] - (
            1 if departure(1).home_province == "DKI Jakarta" else 0
        )


async def test_an_interrupted_fan_out_is_resumed_by_the_next_process(
    settings: Settings, db: AsyncDatabase[dict[str, Any]]
) -> None:
    clock = ManualClock()
    # A replica stored the evacuation and then died before listing anyone: only the database remains.
    await store.ensure_indexes(db)
    await store.record_departures(db, [departure(i, country="SA") for i in range(300)])
    wf, _ = commands.start(
        plans.load()[RepatriationKind.EVACUATION],
        WorkflowRequest(request_id="evac-sa", requested_by="desk", reason="conflict", country="SA"),
        id="evac-sa",
        actor="officer-ani",
        now=clock.now(),
    )
    doc = store.to_doc(wf) | {
        "fanout": {"status": "pending", "countries": ["SA"]},
        "live_key": store.live_key(wf),
    }
    await db[store.WORKFLOWS].insert_one(doc)
    await store.insert_evacuees(db, [])  # nothing listed yet
    async with running(create_app(settings, clock)) as c:

        async def listed() -> dict[str, Any] | None:
            p = (await c.get("/v1/evacuations/evac-sa/progress", headers=DESK)).json()
            return p if p["fanout"] == "done" else None

        p = await eventually(listed, timeout=30)
        assert p["total"] == 300
        got = (await c.get("/v1/repatriations/evac-sa", headers=DESK)).json()
        assert got["current_step"] == "workers_located"
