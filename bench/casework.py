"""Incidents to cases: throughput and latency through intake and casework, against a raw baseline.

`python -m bench.casework [N] [--rate R]`: starts intake and casework in-process on the real
Kafka and MongoDB (Settings() from the environment, a fresh namespace), posts N incidents to
intake's HTTP door with 20 in flight (the throughput), then N more offered at R a second (default
20, issue 11's rate: the p50/p99 POST -> case readable), and measures until every case is
readable in casework. The same run's baseline is a raw aiokafka consumer that inserts the same
number of messages into the same database server. Prints throughput, the ratio
system/baseline, and p50/p99 post-to-case latency. Nothing passes or fails on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from bench.seed import FIRST, LAST
from services.casework.app import create_app as casework_app
from services.casework.changes import case_id_for
from services.intake.app import create_app as intake_app
from shared.events.intake import IncidentAccepted
from shared.namespace import drop_namespace
from shared.settings import Settings
from shared.vocab import Category, Severity

N = 100  # modest: near a minute on the shared 2-core machine; pass a larger N as an argument
# An evacuation opens the country's group case that later reports join: not one worker's case.
CATEGORIES = [c for c in Category if c is not Category.EVACUATION]
IN_FLIGHT = 20  # concurrent posts, like a handful of mission systems at once
TIMEOUT = 300.0
RATE = 20.0  # reports a second offered for the latency figure (issue 11: p99 POST -> case at 20/s)
MISSION_CREDENTIAL = {"authorization": "Bearer dev-kbri-seoul"}


@contextlib.asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=30) as client:
            yield client


# The reports' workers: the seed's name pools (3,888 names, so some repeat among a few hundred
# reports, as Indonesian names do), each with a date of birth, so each report names a distinct
# worker (name and date of birth) and opens a case of its own; one in ten names the worker by
# name alone, as a report of someone the mission knows little of (a same-name suggestion, never
# a join). Deterministic per i.
NAME_ONLY = 0.1


def incident_report(i: int, *, mission_id: str = "kbri-seoul", country: str = "KR") -> dict[str, Any]:
    """The i-th benchmark report: a distinct worker, a realistic category and severity."""
    rng = random.Random(i)
    worker: dict[str, Any] = {"full_name": f"{rng.choice(FIRST)} {rng.choice(FIRST)} {rng.choice(LAST)}"}
    if rng.random() >= NAME_ONLY:
        dob = date(rng.randint(1975, 2003), rng.randint(1, 12), rng.randint(1, 28))
        worker["date_of_birth"] = dob.isoformat()
    return {
        "mission_id": mission_id,
        "country": country,
        "worker": worker,
        "category": rng.choice(CATEGORIES).value,
        "severity": rng.choices(list(Severity), [20, 40, 30, 10])[0].value,
        "occurred_at": "2026-11-20T09:30:00+09:00",
    }


# The processes an incident costs CPU in on this machine besides this one (intake, casework and
# the bench's client): the local infrastructure's (deploy/local/infra.sh), by their command lines.
LOCAL_PROCESSES = {
    "store": "ferretdb --handler",
    "mongoserial": "mongoserial -listen",
    "kafka": "kafka.Kafka",
}
PYTHON = "python"


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process and by each local infrastructure process (Linux's
    /proc; none found where the database and the broker run elsewhere)."""
    own = os.times()
    used = {PYTHON: own.user + own.system}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            name = next((name for name, seen in LOCAL_PROCESSES.items() if seen in command), None)
            if name is not None:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return used


def cpu_line(figures: dict[str, Any], n: int, cores: int | None = None) -> str:
    """CPU milliseconds an incident by process, and the throughput all the machine's cores would
    allow at that cost (what bounds the figure when the machine runs nothing else)."""
    used: dict[str, float] = figures["cpu"]
    total = sum(used.values())
    cores = cores or os.cpu_count() or 1
    each = ", ".join(f"{name} {seconds / n * 1000:.1f}" for name, seconds in used.items())
    ceiling = cores * n / total if total else float("nan")
    return (
        f"CPU ms an incident: {each}; all {total / n * 1000:.1f}, so {cores} cores allow "
        f"{ceiling:.1f} cases/s ({n / figures['elapsed'] / ceiling:.2f} of it used)"
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_system(
    settings: Settings, n: int, *, rate: float | None = None, first: int = 0
) -> dict[str, Any]:
    """Post n incidents to intake (reports first.. first+n-1); wait until casework holds every case.

    Closed loop (IN_FLIGHT posts at a time: the throughput) unless `rate` is given: then the
    i-th report is sent at i / rate seconds whatever the answers (an offered load: the latency).
    """
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
        if len(seen) >= n and not all_seen.is_set():
            cpu.append(cpu_seconds())  # from the first POST to the last case, the reads after not
            all_seen.set()

    cw.state.runtime.after_handle.append(stored)
    async with _running(intake_app(settings)) as intake, _running(cw) as casework:
        sem = asyncio.Semaphore(IN_FLIGHT if rate is None else n)

        async def post(i: int) -> None:
            if rate is not None:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            async with sem:
                t0 = time.perf_counter()
                r = await intake.post(
                    "/v1/incidents", json=incident_report(first + i), headers=MISSION_CREDENTIAL
                )
                r.raise_for_status()
                posted[r.json()["incident_id"]] = t0

        cpu = [cpu_seconds()]
        start = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(n)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_seen.wait(), TIMEOUT)
        elapsed = max(seen.values()) - start if seen else float("nan")
        # every case is readable through casework's own HTTP side too
        auditor = {"authorization": "Bearer dev-auditor-fajar"}
        readable = 0
        for inc in posted:
            # the case it opened, by `_id`; else (it joined another) the list by incident, which reads
            # every case on the local FerretDB (an array's elements: 4 s a read at a national year)
            r = await casework.get(f"/v1/cases/{case_id_for(inc)}", headers=auditor)
            if r.status_code == 200 and inc in r.json().get("incident_ids", []):
                readable += 1
                continue
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
        "cpu": {name: cpu[-1].get(name, 0.0) - was for name, was in cpu[0].items()},
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
                body = {"id": eid, "type": "bench", "data": {"incident_id": eid, **incident_report(i)}}
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


async def bench(n: int = N, rate: float = RATE) -> dict[str, Any]:
    """Run the system (closed loop, then at `rate` offered) and the baseline on one fresh
    namespace; the figures."""
    settings = Settings(namespace=f"bench{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    try:
        system = await run_system(settings, n)
        offered = await run_system(settings, n, rate=rate, first=n)
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
        "rate": rate,
        "offered_p50_ms": offered["p50"] * 1000,
        "offered_p99_ms": offered["p99"] * 1000,
        "offered_per_s": n / offered["elapsed"],
        "baseline_p50_ms": baseline["p50"] * 1000,
        "baseline_p99_ms": baseline["p99"] * 1000,
        "cpu": cpu_line(system, n),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.casework")
    ap.add_argument("n", nargs="?", type=int, default=N, help="incidents in each phase")
    ap.add_argument("--rate", type=float, default=RATE, help="offered reports a second, for the latency")
    args = ap.parse_args()
    r = asyncio.run(bench(args.n, args.rate))
    print(f"casework: incidents to cases, N={r['n']:.0f} (intake HTTP -> Kafka -> casework -> MongoDB)")
    print(
        f"  system    {r['system_per_s']:8.1f} cases/s   p50 {r['system_p50_ms']:7.1f} ms   "
        f"p99 {r['system_p99_ms']:7.1f} ms   (closed loop, {IN_FLIGHT} posts in flight)"
    )
    print(
        f"  offered   {r['rate']:8.1f} /s         p50 {r['offered_p50_ms']:7.1f} ms   "
        f"p99 {r['offered_p99_ms']:7.1f} ms   (POST -> case; {r['offered_per_s']:.1f} cases/s came out)"
    )
    print(
        f"  baseline  {r['baseline_per_s']:8.1f} msgs/s    p50 {r['baseline_p50_ms']:7.1f} ms   "
        f"p99 {r['baseline_p99_ms']:7.1f} ms   (raw aiokafka consumer, one insert a message)"
    )
    print(f"  ratio system/baseline throughput: {r['ratio']:.2f}")
    print(f"  system's {r['cpu']}")


if __name__ == "__main__":
    main()
