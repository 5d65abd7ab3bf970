"""Timer lateness of escalation with many pending timers: `python -m bench.escalation [N] [--cap S]`.

Bulk-inserts N pending chains (default 100,000: critical-case chains of the default rules) into
a fresh namespace, due in waves over the first `--spread` seconds of a clock that follows the
wall clock from a fixed start (the injected clock: the service reads nothing else). Then two
engines (two replicas, sharing the database) run their timer loops until every timer fired or
`--cap` seconds passed. Reports, on the injected clock, lateness = fired time - due time (p50,
p99, max) and, on the wall clock, the fire rate. The outbox relay is not running: publishing
to Kafka is measured by the outbox's own figures, not here. Nothing passes or fails on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from services.escalation import evaluation, ruleset, store
from services.escalation.chains import chain_doc
from services.escalation.engine import Escalation
from shared.events.casework import CaseOpened
from shared.service import Runtime
from shared.settings import Settings

BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


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


async def run(
    n: int, spread: float, cap: float, replicas: int, settings: Settings | None = None
) -> dict[str, float]:
    """Fire n timers; the figures. With `settings` (bench.national: a seeded namespace, whose own
    pending chains stay pending beside these), its database is kept; otherwise a fresh one is dropped."""
    own = settings is None
    settings = settings or Settings(namespace=f"bench_esc_{uuid.uuid4().hex[:8]}_")
    clock = FollowingClock()
    runtimes = [Runtime("escalation", settings=settings, clock=clock, outbox_collections=[store.EMISSIONS])]
    runtimes += [
        Runtime("escalation", settings=settings, clock=clock, outbox_collections=[store.EMISSIONS])
        for _ in range(replicas - 1)
    ]
    engines = [Escalation(rt, poll_seconds=0.05, batch=500) for rt in runtimes]
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
            # waves: ten equal waves over the spread, so the loop sees bursts, not a trickle
            wave = (i % 10) * spread / 10
            doc["due_at"] = BASE + timedelta(seconds=lead + wave)
            docs.append(doc)
        await store.insert_chains(first.rt.db, docs)
        insert_s = time.monotonic() - t
        print(f"escalation bench: {n} pending timers bulk-inserted in {insert_s:.1f}s ({replicas} replicas)")
        clock.t0 = time.monotonic()  # the injected clock starts once the timers are stored
        for e in engines:
            e.keep_lateness = True
        tasks = [asyncio.create_task(e.run()) for e in engines]
        wall0 = time.monotonic()
        while time.monotonic() - wall0 < cap:
            await asyncio.sleep(1.0)
            if sum(e.fired for e in engines) >= n:
                break
        wall = time.monotonic() - wall0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        fired = sum(e.fired for e in engines)
        late = [x for e in engines for x in e.lateness]
        firings = await first.rt.db[store.DECIDED].count_documents({"kind": "slot", "outcome": "fired"})
        print(f"  fired {fired} of {n} in {wall:.1f}s wall ({fired / wall:.0f} timers/s)")
        print(
            f"  per replica: {[e.fired for e in engines]}; firing records: {firings}"
            f" (exactly once: {firings == fired})"
        )
        print(
            "  lateness on the injected clock (fired - due): "
            f"p50 {_pct(late, 50):.2f}s  p99 {_pct(late, 99):.2f}s"
            f"  max {max(late, default=float('nan')):.2f}s"
        )
        if fired < n:
            print(
                f"  stopped at the {cap:.0f}s cap: {n - fired} timers still due (FerretDB write rate bound)"
            )
        return {
            "fired": fired,
            "n": n,
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
    ap.add_argument("timers", nargs="?", type=int, default=100_000)
    ap.add_argument("--spread", type=float, default=10.0, help="seconds over which the waves fall due")
    ap.add_argument("--cap", type=float, default=45.0, help="stop firing after this many seconds")
    ap.add_argument("--replicas", type=int, default=2)
    args = ap.parse_args()
    asyncio.run(run(args.timers, args.spread, args.cap, args.replicas))


if __name__ == "__main__":
    main()
