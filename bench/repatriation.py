"""Evacuation fan-out: how long listing N registered workers of one country takes.

`python -m bench.repatriation [N]` (Kafka and MongoDB from the environment, like the services;
N defaults to BENCH_EVACUEES, 10,000; issue 11's figure is `python -m bench.repatriation 100000`).
Starts repatriation in-process on a fresh namespace, fills its departures projection with
N workers abroad through the very store function the DepartureRecorded handler uses (and
BENCH_EVACUEES_ELSEWHERE workers in another country, default 0, that the fan-out must pass
over), also feeds a few hundred over Kafka through the handler, then times the evacuation
request (fan-out included) and the progress read, with every database command of the fan-out
(PyMongo command monitoring, as bench.commands). Cleans up after itself. Prints figures only.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from bench.commands import Cpu, plan, table, watch
from services.repatriation import store
from services.repatriation.app import create_app
from shared.auth import dev_token
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.events.registry import DepartureRecorded, DepartureStatus, Scheme, Sector, SkillLevel
from shared.namespace import drop_namespace
from shared.settings import Settings
from shared.topics import DEPARTURES

N = int(os.environ.get("BENCH_EVACUEES", "10000"))
ELSEWHERE = int(os.environ.get("BENCH_EVACUEES_ELSEWHERE", "0"))
OVER_KAFKA = int(os.environ.get("BENCH_EVACUEES_KAFKA", "200"))
PROVINCES = ["DKI Jakarta", "Jawa Barat", "Jawa Tengah", "Jawa Timur", "Nusa Tenggara Barat"]
DESK = {"authorization": f"Bearer {dev_token('officer-ani')}"}


def departure(i: int, prefix: str = "w", country: str = "MY") -> DepartureRecorded:
    return DepartureRecorded(
        worker_id=f"{prefix}-{i:06d}",
        departure_id=f"d-{prefix}-{i:06d}",
        version=1,
        change="active_abroad",
        status=DepartureStatus.ACTIVE_ABROAD,
        full_name=f"Pekerja {i}",
        home_province=PROVINCES[i % len(PROVINCES)],
        destination_country=country,
        sector=Sector.MANUFACTURING,
        skill_level=SkillLevel.MIDDLE,
        scheme=Scheme.AGENCY,
        departure_date=date(2025, 6, 1),
        recorded_at=datetime(2025, 6, 1, tzinfo=UTC),
    )


async def _wait_projected(db, ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Until every departure id is in the projection; by _id, checking only the missing ones."""
    missing = list(ids)
    while missing:
        missing = [i for i in missing if await db[store.DEPARTURES].find_one({"_id": i}) is None]
        if missing:
            await asyncio.sleep(0.2)


async def run(n: int = N) -> None:
    base = Settings()
    settings = base.model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:8]}_"})
    tally = watch(settings.namespace)
    app = create_app(settings, ManualClock())
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    db = client[settings.database("repatriation")]
    try:
        async with app.router.lifespan_context(app):
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
            )
            t = time.perf_counter()
            for start in range(0, n, 10_000):
                chunk = range(start, min(n, start + 10_000))
                await store.record_departures(db, [departure(i) for i in chunk])
            projection = time.perf_counter() - t
            for start in range(0, ELSEWHERE, 10_000):
                chunk = range(start, min(ELSEWHERE, start + 10_000))
                await store.record_departures(db, [departure(i, "e", "SA") for i in chunk])

            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
            await producer.start()
            t = time.perf_counter()
            for i in range(OVER_KAFKA):
                env = Envelope.wrap(departure(i, "k"), source="bench", subject=f"k-{i}", clock=ManualClock())
                await producer.send(
                    settings.topic(DEPARTURES.name), env.model_dump_json().encode(), key=b"k%d" % i
                )
            await producer.flush()
            await producer.stop()
            await _wait_projected(db, [f"d-k-{i:06d}" for i in range(OVER_KAFKA)])
            over_kafka = time.perf_counter() - t

            abroad = await plan(db, store.DEPARTURES, store.abroad_query(["MY"]))
            tally.seconds.clear()
            cpu = Cpu()
            cpu.start()
            t = time.perf_counter()
            r = await http.post("/v1/evacuations", json={"country": "MY", "reason": "bench"}, headers=DESK)
            fanout = time.perf_counter() - t
            commands = {k: list(v) for k, v in tally.seconds.items()}
            used = cpu.stop()
            r.raise_for_status()
            evac = r.json()
            total = evac["fanout"]["count"]

            t = time.perf_counter()
            p = (await http.get(f"/v1/evacuations/{evac['repatriation_id']}/progress", headers=DESK)).json()
            read = time.perf_counter() - t
            t = time.perf_counter()
            await http.get(
                f"/v1/evacuations/{evac['repatriation_id']}/progress?by_province=true", headers=DESK
            )
            read_prov = time.perf_counter() - t
            await http.aclose()
    finally:
        await client.close()
        await drop_namespace(settings)

    print(f"repatriation: evacuation fan-out ({ELSEWHERE} departures in another country beside them)")
    print(f"  projection bulk write   {n:>6} departures  {projection:7.2f} s  {n / projection:8.0f} /s")
    rate = OVER_KAFKA / over_kafka
    print(f"  projection over Kafka   {OVER_KAFKA:>6} events      {over_kafka:7.2f} s  {rate:8.0f} /s")
    print(
        f"  evacuation fan-out      {total:>6} workers     {fanout:7.2f} s  {total / fanout:8.0f} workers/s"
    )
    print(f"  progress read (status)  {p['total']:>6} workers     {read:7.2f} s")
    print(f"  progress by province    {p['total']:>6} workers     {read_prov:7.2f} s")
    print(f"  ratio fan-out / projection bulk write: {fanout / projection:.2f}")
    print(f"  fan-out {used}")
    print(f"  the fan-out's read of the departures abroad, its plan: {abroad}")
    print(f"  database commands of the fan-out request, per 1,000 workers listed ({total}):")
    tally.seconds.clear()
    tally.seconds.update(commands)
    table(tally, max(total / 1000, 0.001), "1,000")


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else N))


if __name__ == "__main__":
    main()
