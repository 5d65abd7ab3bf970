"""Timer lateness of escalation with many pending timers: `python -m bench.escalation [N] [--due D]`.

Bulk-inserts N pending chains (critical-case chains of the default rules) into a fresh
namespace. D of them (`--due`: BENCH_TIMERS_DUE, default 1,000; 0 means all N) fall due in
ten waves over the first `--spread` seconds of a clock that follows the wall clock from a fixed
start (the injected clock: the service reads nothing else); the other N - D are due a month
later, so they stay pending beside the firing ones: the store holds N pending timers while D
fire. Then two engines (two replicas, sharing the database) run their timer loops until the D
timers fired or `--cap` seconds passed. Reports, on the injected clock, lateness = fired time -
due time (p50, p99, max), exactly once (firing records against firings), on the wall clock the
fire rate; the time of the timer loop's due-timers read at N pending (none due, and a full
batch of 500 due) with its query plan; CPU seconds of the bench and of the infrastructure;
and every database command the engines sent while firing (PyMongo command monitoring, as
bench.commands), per fired timer. The outbox relay is not running: publishing to Kafka is
measured by the outbox's own figures, not here. Nothing passes or fails on speed.

`make bench` runs the size in BENCH_TIMERS / BENCH_TIMERS_DUE (default 10,000 pending, 1,000
due); issue 11's figures: `python -m bench.escalation 100000 --due 1000` and
`python -m bench.escalation 10000 --due 1000` (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.commands import Cpu, Tally, plan, table, watch
from services.escalation import evaluation, ruleset, store
from services.escalation.chains import chain_doc
from services.escalation.engine import Escalation
from shared.events.casework import CaseOpened
from shared.service import Runtime
from shared.settings import Settings

BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LATER = timedelta(days=30)  # when the timers not meant to fire in the run are due
BATCH = 500  # the engines' due-timers read: at most this many chains a pass


class FollowingClock:
    """The injected clock: BASE plus the wall time elapsed since it was made."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return BASE + timedelta(seconds=time.monotonic() - self.t0)


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def falls_due(i: int, n: int, due: int) -> bool:
    """Whether timer i of n is one of the `due` that fire in the run (spread evenly over the n)."""
    return i * due // n != (i + 1) * due // n


async def _timed_due(db, now: datetime, limit: int, rounds: int = 5) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """The median time of the engines' due-timers read (store.due), and how many it returned."""
    times, got = [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        got = len(await store.due(db, now, limit))
        times.append(time.perf_counter() - t)
    return _pct(times, 50), got


async def run(
    n: int,
    spread: float,
    cap: float,
    replicas: int,
    settings: Settings | None = None,
    *,
    due: int | None = None,
    poll: float = 0.05,
) -> dict[str, float]:
    """Store n timers, `due` of them (default all) due within `spread` seconds; fire those; the figures.

    With `settings` (bench.national: a seeded namespace, whose own pending chains stay pending
    beside these), its database is kept; otherwise a fresh one is dropped."""
    due = n if due is None else min(due, n)
    own = settings is None
    settings = settings or Settings(namespace=f"bench_esc_{uuid.uuid4().hex[:8]}_")
    tally: Tally = watch(settings.namespace)
    clock = FollowingClock()
    runtimes = [Runtime("escalation", settings=settings, clock=clock, outbox_collections=[store.EMISSIONS])]
    runtimes += [
        Runtime("escalation", settings=settings, clock=clock, outbox_collections=[store.EMISSIONS])
        for _ in range(replicas - 1)
    ]
    engines = [Escalation(rt, poll_seconds=poll, batch=BATCH) for rt in runtimes]
    try:
        await engines[0].startup()
        for e in engines[1:]:
            await e.reload()
        first = engines[0]
        lead = 1.0  # seconds after the clock starts (once inserted) before the first wave is due
        t = time.monotonic()
        docs = []
        for i in range(n):
            case = CaseOpened(
                case_id=f"bench-{i}",
                incident_id=f"inc-{i}",
                worker_key="wk",
                mission_id="kbri-kuala-lumpur",
                country="MY",
                category="unpaid_wages",
                severity="critical",
                priority=3,
                opened_at=BASE,
            )
            ev = ruleset.Incoming(
                id=f"ev-{i}", name="CaseOpened", time=BASE, data=case.model_dump(mode="json")
            )
            [start] = [
                s
                for s in evaluation.evaluate(first.rules, first.version, ev).starts
                if s.rule_id == "critical-ack-1h"
            ]
            doc = chain_doc(start, created_at=BASE)
            # waves: ten equal waves over the spread, so the loop sees bursts, not a trickle;
            # the timers beyond `due` (every (n/due)-th one fires) wait a month
            if falls_due(i, n, due):
                wave = ((i * due // n) % 10) * spread / 10
                doc["due_at"] = BASE + timedelta(seconds=lead + wave)
            else:
                doc["due_at"] = BASE + LATER + timedelta(seconds=i % 86_400)
            docs.append(doc)
            if len(docs) >= 5000:
                await store.insert_chains(first.rt.db, docs)
                docs = []
        await store.insert_chains(first.rt.db, docs)
        insert_s = time.monotonic() - t
        print(
            f"escalation bench: {n} pending timers ({due} due within {spread:.0f}s) bulk-inserted"
            f" in {insert_s:.1f}s ({n / insert_s:.0f}/s; {replicas} replicas)"
        )
        db = first.rt.db
        none_s, _ = await _timed_due(db, BASE, BATCH)
        full_s, got = await _timed_due(db, BASE + LATER * 2, BATCH)
        print(
            f"  the due-timers read at {n} pending: none due {none_s * 1000:.1f} ms;"
            f" {got} due {full_s * 1000:.1f} ms (median of 5)"
        )
        print(f"  its plan: {await plan(db, store.CHAINS, {'due_at': {'$lte': BASE}}, BATCH)}")
        tally.seconds.clear()
        clock.t0 = time.monotonic()  # the injected clock starts once the timers are stored
        for e in engines:
            e.keep_lateness = True
        cpu = Cpu()
        cpu.start()
        tasks = [asyncio.create_task(e.run()) for e in engines]
        wall0 = time.monotonic()
        while time.monotonic() - wall0 < cap:
            await asyncio.sleep(1.0)
            if sum(e.fired for e in engines) >= due:
                break
        wall = time.monotonic() - wall0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        commands = {k: list(v) for k, v in tally.seconds.items()}  # the engines' only, not the count below
        used = cpu.stop()
        fired = sum(e.fired for e in engines)
        late = [x for e in engines for x in e.lateness]
        firings = await first.rt.db[store.DECIDED].count_documents({"kind": "slot", "outcome": "fired"})
        decided = await db[store.DECIDED].estimated_document_count()
        marks = await plan(db, store.DECIDED, {"_id": {"$in": ["a", "b"]}})
        print(f"  the emitted mark's filter (emit_batch, _id $in) on decided ({decided} records): {marks}")
        unemitted = {"emitted": False, "outcome": "fired", "decided_wall": {"$lt": 0.0}}
        repair = await plan(db, store.DECIDED, unemitted)
        print(f"  the repair's read of unemitted decisions (store.unemitted): {repair}")
        print(f"  fired {fired} of {due} due in {wall:.1f}s wall ({fired / wall:.0f} timers/s)")
        print(
            f"  per replica: {[e.fired for e in engines]}; firing records: {firings}"
            f" (exactly once: {firings == fired})"
        )
        print(
            "  lateness on the injected clock (fired - due): "
            f"p50 {_pct(late, 50):.2f}s  p99 {_pct(late, 99):.2f}s"
            f"  max {max(late, default=float('nan')):.2f}s"
        )
        if fired < due:
            print(f"  stopped at the {cap:.0f}s cap: {due - fired} timers still due")
        print(f"  {used}")
        print(f"  database commands of the engines while firing, per fired timer ({fired}):")
        tally.seconds.clear()
        tally.seconds.update(commands)
        table(tally, fired, "timer")
        return {
            "fired": fired,
            "n": n,
            "due": due,
            "due_read_none_ms": none_s * 1000,
            "due_read_full_ms": full_s * 1000,
            "per_s": fired / wall,
            "p50": _pct(late, 50),
            "p99": _pct(late, 99),
            "exactly_once": float(firings == fired),
        }
    finally:
        client = runtimes[0].mongo
        if own:
            await client.drop_database(settings.database("escalation"))
        for rt in runtimes:
            await rt.mongo.close()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.escalation")
    ap.add_argument("timers", nargs="?", type=int, default=int(os.environ.get("BENCH_TIMERS", "10000")))
    ap.add_argument(
        "--due",
        type=int,
        default=int(os.environ.get("BENCH_TIMERS_DUE", "1000")),
        help="how many of the timers fall due in the run (0: all); the rest wait a month",
    )
    ap.add_argument("--spread", type=float, default=10.0, help="seconds over which the waves fall due")
    ap.add_argument("--cap", type=float, default=120.0, help="stop firing after this many seconds")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--poll", type=float, default=0.05, help="the timer loop's pause between passes")
    args = ap.parse_args()
    asyncio.run(run(args.timers, args.spread, args.cap, args.replicas, due=args.due or None, poll=args.poll))


if __name__ == "__main__":
    main()
