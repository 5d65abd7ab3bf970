"""Incidents to cases: throughput and latency through intake and casework, against a raw baseline.

`python -m bench.casework [N]`: starts intake and casework in-process on the real Kafka and
MongoDB (Settings() from the environment, a fresh namespace), posts N incidents to intake's
HTTP door, and measures until every case is readable in casework. The same run's baseline
is a raw aiokafka consumer that inserts the same number of messages into the same database
server. Prints throughput, the ratio system/baseline, and p50/p99 post-to-case latency.
Nothing passes or fails on speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from services.casework.app import create_app as casework_app
from services.intake.app import create_app as intake_app
from shared.events.intake import IncidentAccepted
from shared.namespace import drop_namespace
from shared.settings import Settings

N = 100  # modest: near a minute on the shared 2-core machine; pass a larger N as an argument
IN_FLIGHT = 20  # concurrent posts, like a handful of mission systems at once
TIMEOUT = 300.0
MISSION_CREDENTIAL = {"authorization": "Bearer dev-kbri-seoul"}


@contextlib.asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=30) as client:
            yield client


def _incident(i: int) -> dict[str, Any]:
    return {
        "mission_id": "kbri-seoul",
        "country": "KR",
        "worker": {"full_name": f"Bench Worker {i:05d}"},  # a worker each: every incident opens its own case
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+09:00",
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_system(settings: Settings, n: int) -> dict[str, float]:
    """Post n incidents to intake; wait until casework holds every case."""
    posted: dict[str, float] = {}
    seen: dict[str, float] = {}
    all_seen = asyncio.Event()
    cw = casework_app(settings)

    async def stored(env: Any) -> None:
        # casework's after-handle seam: the case is stored (readable) when this runs (it also runs
        # for casework's own case events, consumed for the queues' read model: not these)
        if env.type != IncidentAccepted.type:
            return
        seen.setdefault(env.data["incident_id"], time.perf_counter())
        if len(seen) >= n:
            all_seen.set()

    cw.state.runtime.after_handle.append(stored)
    async with _running(intake_app(settings)) as intake, _running(cw) as casework:
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def post(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                r = await intake.post("/v1/incidents", json=_incident(i), headers=MISSION_CREDENTIAL)
                r.raise_for_status()
                posted[r.json()["incident_id"]] = t0

        start = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(n)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), TIMEOUT)
        elapsed = max(seen.values()) - start if seen else float("nan")
        # every case is readable through casework's own HTTP side too
        auditor = {"authorization": "Bearer dev-auditor-fajar"}
        readable = 0
        for inc in posted:
            r = await casework.get("/v1/cases", params={"incident_id": inc}, headers=auditor)
            readable += bool(r.status_code == 200 and r.json())
        if readable != n:
            raise RuntimeError(f"only {readable} of {n} cases readable over HTTP")
    if len(seen) < n:
        raise RuntimeError(f"only {len(seen)} of {n} cases appeared within {TIMEOUT:.0f}s")
    latencies = [seen[i] - posted[i] for i in posted]
    return {
        "elapsed": elapsed,
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "mean": statistics.mean(latencies),
    }


async def run_baseline(settings: Settings, n: int) -> dict[str, float]:
    """Produce n incident envelopes; a raw consumer inserts one document per message."""
    topic = settings.topic("bench.baseline.v1")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=settings.topic_partitions, replication_factor=1)]
        )
    finally:
        await admin.close()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    coll = mongo[settings.database("baseline")]["cases"]
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group("bench.baseline"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await consumer.start()
    await producer.start()
    try:

        async def consume() -> None:
            deadline = time.perf_counter() + TIMEOUT
            while len(done) < n and time.perf_counter() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for rec in records:
                        env = json.loads(rec.value)
                        await coll.insert_one({"_id": env["id"], **env["data"]})
                        done[env["id"]] = time.perf_counter()
                if batch:
                    await consumer.commit()

        sem = asyncio.Semaphore(IN_FLIGHT)

        async def send(i: int) -> None:
            async with sem:
                eid = uuid.uuid4().hex
                body = {"id": eid, "type": "bench", "data": {"incident_id": eid, **_incident(i)}}
                sent[eid] = time.perf_counter()
                await producer.send_and_wait(topic, json.dumps(body).encode(), key=f"w{i}".encode())

        start = time.perf_counter()
        task = asyncio.create_task(consume())
        await asyncio.gather(*(send(i) for i in range(n)))
        await task
    finally:
        await producer.stop()
        await consumer.stop()
        await mongo.close()
    if len(done) < n:
        raise RuntimeError(f"baseline inserted only {len(done)} of {n} within {TIMEOUT:.0f}s")
    latencies = [done[i] - sent[i] for i in sent]
    return {
        "elapsed": max(done.values()) - start,
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "mean": statistics.mean(latencies),
    }


async def bench(n: int = N) -> dict[str, float]:
    """Run the system and the baseline on one fresh namespace; the figures."""
    settings = Settings(namespace=f"bench{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    try:
        system = await run_system(settings, n)
        baseline = await run_baseline(settings, n)
    finally:
        await drop_namespace(settings)
    sys_tput = n / system["elapsed"]
    base_tput = n / baseline["elapsed"]
    return {
        "n": n,
        "system_per_s": sys_tput,
        "baseline_per_s": base_tput,
        "ratio": sys_tput / base_tput,
        "system_p50_ms": system["p50"] * 1000,
        "system_p99_ms": system["p99"] * 1000,
        "baseline_p50_ms": baseline["p50"] * 1000,
        "baseline_p99_ms": baseline["p99"] * 1000,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N
    r = asyncio.run(bench(n))
    print(f"casework: incidents to cases, N={r['n']:.0f} (intake HTTP -> Kafka -> casework -> MongoDB)")
    print(
        f"  system    {r['system_per_s']:8.1f} cases/s   p50 {r['system_p50_ms']:7.1f} ms   "
        f"p99 {r['system_p99_ms']:7.1f} ms"
    )
    print(
        f"  baseline  {r['baseline_per_s']:8.1f} msgs/s    p50 {r['baseline_p50_ms']:7.1f} ms   "
        f"p99 {r['baseline_p99_ms']:7.1f} ms   (raw aiokafka consumer, one insert a message)"
    )
    print(f"  ratio system/baseline throughput: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
