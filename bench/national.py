"""Issue 11's figures on a seeded national store and on an empty one, in the same run.

`python -m bench.national [--scale S] [--incidents N] [--rounds R] [--timers T] [--keep | --seeded NS]`
(`make bench` runs it with LINDUNGI_SEED_SCALE, default 1: a national year). Loads the seed
(bench.seed) into a fresh namespace, makes a second, empty one, and measures in each, reusing
the existing benchmarks' functions:
- desk reads, on casework's API in-process: the largest queue's page (`GET /v1/queues/{q}/cases
  ?limit=100`), a case page (`GET /v1/cases/{id}`, a different case each round) and claim-next
  (`POST /v1/queues/{q}/claim-next`), and a mission portal's read of its reports' cases (`GET
  /v1/cases?incident_id=...`, 50 reports), p50/p99 on the client's clock. The empty store gets a
  small desk first (bench.console.store_cases: 200 cases, about 20 waiting), so there is something to read;
- timer lateness: T timers due now (bench.escalation.run: two engines), beside the seed's
  pending chains (due over the coming month) on the seeded store, alone on the empty one;
- incidents -> cases: N incidents through intake and casework (bench.casework.run_system:
  throughput and p50/p99 POST -> case readable, 20 posts in flight), N more offered at 20 a
  second (p50/p99 POST -> case readable at that rate), and the raw-client
  baseline (bench.casework.run_baseline) in the same run, and the ratios.
Prints each figure seeded / empty and the ratio. Nothing passes or fails on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

import httpx

from bench import casework as casework_bench
from bench import console as console_bench
from bench import escalation as escalation_bench
from bench.seed import seed
from services.casework import handlers
from services.casework.app import create_app as casework_app
from shared.namespace import drop_namespace
from shared.settings import Settings

OFFICER = {"authorization": "Bearer dev-officer-ani"}
AUDITOR = {"authorization": "Bearer dev-auditor-fajar"}
MISSION = casework_bench.MISSION_CREDENTIAL  # kbri-seoul: its jurisdiction's cases


def _pct(xs: list[float], q: float) -> float:
    return casework_bench._pct(xs, q) if xs else float("nan")


async def desk_reads(settings: Settings, rounds: int, *, fill: int) -> dict[str, tuple[float, float]]:
    """Queue page, case page, claim-next and the mission portal's cases of 50 reports (`GET /v1/cases
    ?incident_id=...`) on casework's API: (p50, p99) seconds each."""
    app = casework_app(settings)
    async with casework_bench._running(app) as http:
        if fill:
            await console_bench.store_cases(app.state.runtime, fill)
            await handlers.fill_waiting(app.state.runtime)  # as a start would: the queues' read model
        queues = (await http.get("/v1/queues", headers=OFFICER)).json()
        largest = max(queues, key=lambda q: q.get("depth", 0))
        queue = largest["id"]
        listed = await http.get("/v1/cases", params={"limit": rounds}, headers=AUDITOR)
        ids = [c["case_id"] for c in listed.json()]
        # the mission portal's read: the cases of a page of the mission's reports (50), by incident
        mine = await http.get("/v1/cases", params={"limit": 50}, headers=MISSION)
        reports = [i for c in mine.json() for i in c["incident_ids"]][:50]
        figures = ("queue page", "case page", "claim-next", "mission page")
        times: dict[str, list[float]] = {name: [] for name in figures}
        took = 0  # claims that found a case (one that finds the queue empty costs less)

        async def timed(name: str, call: Any) -> httpx.Response:
            t0 = time.perf_counter()
            r: httpx.Response = await call
            times[name].append(time.perf_counter() - t0)
            if r.status_code >= 400 and r.status_code != 404:
                raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
            return r

        for i in range(rounds):
            await timed(
                "queue page", http.get(f"/v1/queues/{queue}/cases", params={"limit": 100}, headers=OFFICER)
            )
            await timed("case page", http.get(f"/v1/cases/{ids[i % len(ids)]}", headers=AUDITOR))
            claimed = await timed("claim-next", http.post(f"/v1/queues/{queue}/claim-next", headers=OFFICER))
            took += claimed.status_code == 200
            await timed(
                "mission page",
                http.get("/v1/cases", params={"incident_id": reports, "limit": 100}, headers=MISSION),
            )
    out = {k: (_pct(v, 0.5), _pct(v, 0.99)) for k, v in times.items()}
    out["claimed"] = (float(took), float(rounds))
    # what the queue page and claim-next read grows with the queue's depth (on the local FerretDB,
    # which sorts in Go), not with the cases stored: printed beside them
    out["depth"] = (float(largest.get("depth", 0)), float(sum(q.get("depth", 0) for q in queues)))
    return out


async def bench(
    scale: float, incidents: int, rounds: int, timers: int, keep: bool, reuse: str = ""
) -> dict[str, Any]:
    """The figures; `reuse`: the namespace of a seed kept by an earlier run (--keep), measured again
    without seeding (its timers are not: the earlier run's timers are in it)."""
    seeded = Settings(namespace=reuse or f"national{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    empty = Settings(namespace=f"empty{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    out: dict[str, Any] = {"scale": scale, "reused": reuse, "kept": seeded.namespace if keep else ""}
    # reports numbered past any earlier run's in a reused namespace (the same number is the same report)
    first = 1_000_000 + uuid.uuid4().int % 1_000_000 if reuse else 0
    try:
        t0 = time.monotonic()
        loaded = {"written": {}, "chains": "?"} if reuse else await seed(seeded, scale, progress=True)
        out["seed_s"] = time.monotonic() - t0
        out["seed"] = loaded
        # the empty store's largest queue holds about 1 in 22 of its cases: enough that every
        # round's claim finds one, as on the seeded store (an empty queue's claim costs less)
        for label, settings, fill in (("seeded", seeded, 0), ("empty", empty, max(200, 25 * rounds))):
            out[f"desk {label}"] = await desk_reads(settings, rounds, fill=fill)
            if not reuse:
                out[f"timers {label}"] = await escalation_bench.run(timers, 5.0, 60.0, 2, settings=settings)
            out[f"cases {label}"] = await casework_bench.run_system(settings, incidents, first=first)
            out[f"offered {label}"] = await casework_bench.run_system(
                settings, incidents, rate=casework_bench.RATE, first=first + incidents
            )
        out["baseline"] = await casework_bench.run_baseline(empty, incidents)
    finally:
        if not (keep or reuse):
            await drop_namespace(seeded)
        await drop_namespace(empty)
    return out


def report(r: dict[str, Any], incidents: int) -> None:
    written = r["seed"]["written"]
    if r.get("reused"):
        print(f"national: the seed kept in namespace {r['reused']} (scale {r['scale']}), measured again")
    else:
        print(
            f"national: seed at scale {r['scale']} in {r['seed_s']:.1f}s "
            f"({written.get('registry.departures', 0)} departures, {written.get('casework.cases', 0)} cases, "
            f"{r['seed']['chains']} pending chains; those existing already skipped)"
        )
        if r.get("kept"):
            print(f"  kept in namespace {r['kept']}: measure it again with --seeded {r['kept']}")
    (ds, ws), (de, we) = r["desk seeded"]["depth"], r["desk empty"]["depth"]
    (cs, rs), (ce, re) = r["desk seeded"]["claimed"], r["desk empty"]["claimed"]
    print(
        f"  desk reads on the largest queue: {ds:.0f} waiting seeded ({ws:.0f} in all queues), "
        f"{de:.0f} empty ({we:.0f}); claims that found a case: {cs:.0f} of {rs:.0f} seeded, "
        f"{ce:.0f} of {re:.0f} empty"
    )
    print(f"  {'figure':34s} {'seeded':>10s} {'empty':>10s} {'seeded/empty':>13s}")

    def row(name: str, a: float, b: float, unit: str) -> None:
        digits = 2 if unit == "s" else 1
        print(f"  {name:34s} {a:10.{digits}f} {b:10.{digits}f} {a / b if b else float('nan'):13.2f}  {unit}")

    for fig in ("queue page", "case page", "claim-next", "mission page"):
        s, e = r["desk seeded"][fig], r["desk empty"][fig]
        row(f"desk {fig} p50", s[0] * 1000, e[0] * 1000, "ms")
        row(f"desk {fig} p99", s[1] * 1000, e[1] * 1000, "ms")
    if "timers seeded" in r:
        ts, te = r["timers seeded"], r["timers empty"]
        row(f"timer lateness p50 ({te['n']} due)", ts["p50"], te["p50"], "s")
        row(f"timer lateness p99 ({te['n']} due)", ts["p99"], te["p99"], "s")
        print(
            f"  timers fired seeded {ts['fired']}/{ts['n']}, empty {te['fired']}/{te['n']}; exactly once: "
            f"{bool(ts['exactly_once'])}/{bool(te['exactly_once'])}"
        )
    else:
        print("  timers: not measured on a reused seed")
    cs, ce, base = r["cases seeded"], r["cases empty"], r["baseline"]
    row(
        f"incidents -> cases (N={incidents})", incidents / cs["elapsed"], incidents / ce["elapsed"], "cases/s"
    )
    row("POST -> case p50", cs["p50"] * 1000, ce["p50"] * 1000, "ms")
    row("POST -> case p99", cs["p99"] * 1000, ce["p99"] * 1000, "ms")
    os_, oe = r["offered seeded"], r["offered empty"]
    rate = casework_bench.RATE
    row(f"POST -> case p50 at {rate:.0f}/s offered", os_["p50"] * 1000, oe["p50"] * 1000, "ms")
    row(f"POST -> case p99 at {rate:.0f}/s offered", os_["p99"] * 1000, oe["p99"] * 1000, "ms")
    base_rate = incidents / base["elapsed"]
    print(f"  raw-client baseline {base_rate:.1f} msgs/s (aiokafka consumer, one insert a message)")
    print(
        f"  ratio system/baseline: seeded {incidents / cs['elapsed'] / base_rate:.3f}, "
        f"empty {incidents / ce['elapsed'] / base_rate:.3f}"
    )
    print(f"  seeded: {casework_bench.cpu_line(cs, incidents)}")
    print(f"  empty:  {casework_bench.cpu_line(ce, incidents)}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.national")
    ap.add_argument("--scale", type=float, default=float(os.environ.get("LINDUNGI_SEED_SCALE", "1")))
    ap.add_argument("--incidents", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20, help="reads of each desk page")
    ap.add_argument("--timers", type=int, default=None, help="timers due now (default: 10,000 x scale)")
    ap.add_argument("--keep", action="store_true", help="keep the seeded namespace")
    ap.add_argument("--seeded", default="", help="measure a seed kept earlier (its namespace), not a new one")
    args = ap.parse_args()
    timers = args.timers or max(100, round(10_000 * args.scale))
    figures = bench(args.scale, args.incidents, args.rounds, timers, args.keep, args.seeded)
    report(asyncio.run(figures), args.incidents)


if __name__ == "__main__":
    main()
