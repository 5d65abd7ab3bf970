"""Database commands per incident on the path POST -> intake -> Kafka -> casework -> readable.

`python -m bench.commands [N] [--namespace NS --first K] [--shapes]` (default 100) runs
`bench.casework`'s system half (intake and casework in this process, on the real Kafka and
MongoDB from the environment, a fresh namespace, or a kept seeded one with --namespace) with
PyMongo command monitoring on, and prints every command the two services sent, by service,
command and collection (--shapes: and the filter's keys): how many per incident, the median and
p99 time each took, and the milliseconds they add up to per incident. It tells where the round
trips of one incident go (issue 11: the path is bound by the database, and each round trip costs
tens of milliseconds under load on FerretDB), before and after a change that means to remove
some, and, on a kept national seed, which read grows with the year. Nothing passes or fails on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import monitoring

from bench.casework import N, _pct, run_system
from shared.namespace import drop_namespace
from shared.settings import Settings

SKIP = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart", "saslContinue"}


@dataclass
class Tally:
    """Command durations (seconds) by (database, command, collection), from PyMongo's events."""

    namespace: str
    started: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    seconds: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: int = 0
    shapes: bool = False  # label finds and updates by their filter's keys too (which read is it?)

    def started_command(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in SKIP or not event.database_name.startswith(self.namespace):
            return
        target = event.command.get(event.command_name)
        coll = event.command.get("collection") if event.command_name == "getMore" else target
        service = event.database_name.removeprefix(self.namespace).removeprefix("lindungi_")
        if self.shapes:
            coll = f"{coll}{_shape(event.command)}"
        self.started[event.request_id] = (service, event.command_name, str(coll or "-"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        key = self.started.pop(event.request_id, None)
        if key is not None:
            self.seconds[key].append(event.duration_micros / 1e6)

    def failed_command(self, event: monitoring.CommandFailedEvent) -> None:
        if self.started.pop(event.request_id, None) is not None:
            self.failed += 1


def _shape(command: Any) -> str:
    """A command's filter keys, '{a,b}' (the first statement's, for updates and deletes)."""
    spec = command.get("filter") or command.get("query")
    for many in ("updates", "deletes"):
        if spec is None and command.get(many):
            spec = command[many][0].get("q")
    return "{" + ",".join(sorted(spec)) + "}" if isinstance(spec, dict) else ""


class _Listener(monitoring.CommandListener):
    """PyMongo's listener interface, forwarding to a Tally."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.tally.started_command(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.tally.succeeded(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.tally.failed_command(event)


class Cpu:
    """CPU seconds spent between start() and stop() by this process and by the infrastructure's
    processes (FerretDB, mongoserial, Kafka; pid files under LINDUNGI_STATE, else the cache):
    beside the wall time, it says which side was busy. Linux only (/proc); absent pids are skipped."""

    PIDS = {
        "ferretdb": "ferretdb/ferretdb.pid",
        "mongoserial": "ferretdb/mongoserial.pid",
        "kafka": "kafka/kafka.pid",
    }

    def __init__(self) -> None:
        root = Path(__file__).parent.parent
        self.state = Path(
            os.environ.get("LINDUNGI_STATE") or os.environ.get("LINDUNGI_CACHE") or root / ".cache"
        )
        self.begin: dict[str, float] = {}
        self.wall = 0.0

    def _sample(self) -> dict[str, float]:
        out = {"bench (python)": time.process_time()}
        tick = os.sysconf("SC_CLK_TCK")
        for name, rel in self.PIDS.items():
            try:
                pid = (self.state / rel).read_text().strip()
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            except (OSError, ValueError, IndexError):
                continue
        return out

    def start(self) -> None:
        self.begin = self._sample()
        self.wall = time.perf_counter()

    def stop(self) -> str:
        """'name cpu-seconds (share of the wall time)' for each process."""
        wall = time.perf_counter() - self.wall
        end = self._sample()
        parts = [
            f"{name} {end[name] - self.begin[name]:.1f} s ({(end[name] - self.begin[name]) / wall:.0%})"
            for name in end
            if name in self.begin
        ]
        return f"CPU over {wall:.1f} s wall: " + ", ".join(parts)


def watch(namespace: str, shapes: bool = False) -> Tally:
    """A tally of the commands sent to a namespace's databases by every client created from now on
    (PyMongo registers listeners process-wide, at client creation: call this before the clients)."""
    tally = Tally(namespace=namespace, shapes=shapes)
    monitoring.register(_Listener(tally))
    return tally


def table(tally: Tally, per: float, unit: str) -> None:
    """Print the tally by service, command and collection: count per `unit` (of `per`), p50, p99, total."""
    head = f"  {'service':<12} {'command':<16} {'collection':<34} {'per ' + unit:>12}"
    print(f"{head} {'p50 ms':>8} {'p99 ms':>8} {'total s':>8}")
    rows = sorted(tally.seconds.items(), key=lambda kv: -sum(kv[1]))
    for (service, command, coll), times in rows:
        print(
            f"  {service:<12} {command:<16} {coll:<34} {len(times) / max(per, 1):12.2f} "
            f"{_pct(times, 0.5) * 1000:8.1f} {_pct(times, 0.99) * 1000:8.1f} {sum(times):8.1f}"
        )
    count = sum(len(t) for t in tally.seconds.values())
    spent = sum(sum(t) for t in tally.seconds.values())
    print(
        f"  {'all':<12} {'':<16} {'':<34} {count / max(per, 1):12.2f} {'':>8} {'':>8} {spent:8.1f}"
        f"   (failed commands: {tally.failed})"
    )


async def plan(db: Any, collection: str, filter: dict[str, Any], limit: int = 0) -> str:
    """A find's query plan: SQLite's plan rows on FerretDB (SEARCH ... USING INDEX, or SCAN), the
    winning plan's stages on MongoDB (IXSCAN, COLLSCAN, ...)."""
    cmd: dict[str, Any] = {"find": collection, "filter": filter}
    if limit:
        cmd["limit"] = limit
    planner = (await db.command("explain", cmd, verbosity="queryPlanner")).get("queryPlanner", {})
    if "Plan" in planner:
        rows = [str(row.get("detail", row)) if isinstance(row, dict) else str(row) for row in planner["Plan"]]
        return " | ".join(rows)
    stages, step = [], planner.get("winningPlan", {})
    while step:
        stages.append(str(step.get("stage")))
        step = step.get("inputStage") or {}
    return " <- ".join(stages)


async def profile(
    n: int, namespace: str = "", first: int = 0, shapes: bool = False
) -> tuple[Tally, dict[str, float]]:
    """The commands of n incidents in a fresh namespace (dropped after), or in an existing one
    (a kept seed: `bench.national --keep`, `bench.seed --namespace`), left as it is."""
    settings = Settings(namespace=namespace or f"bench{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    tally = watch(settings.namespace, shapes)  # every client created from now on reports to it
    try:
        figures = await run_system(settings, n, first=first)
    finally:
        if not namespace:
            await drop_namespace(settings)
    return tally, figures


def report(tally: Tally, figures: dict[str, float], n: int) -> None:
    print(
        f"commands per incident, N={n} (intake and casework, POST to case readable; "
        f"{n / figures['elapsed']:.1f} cases/s, p50 {figures['p50'] * 1000:.0f} ms, "
        f"p99 {figures['p99'] * 1000:.0f} ms from POST to case)"
    )
    head = f"  {'service':<12} {'command':<16} {'collection':<34} {'per incident':>12}"
    print(f"{head} {'p50 ms':>8} {'p99 ms':>8} {'ms/incident':>11}")
    total = spent = 0.0
    rows = sorted(tally.seconds.items(), key=lambda kv: -len(kv[1]))
    for (service, command, coll), times in rows:
        per = len(times) / n
        total += per
        spent += sum(times)
        print(
            f"  {service:<12} {command:<16} {coll:<34} {per:12.2f} "
            f"{_pct(times, 0.5) * 1000:8.1f} {_pct(times, 0.99) * 1000:8.1f} {sum(times) / n * 1000:11.1f}"
        )
    print(
        f"  {'all':<12} {'':<16} {'':<34} {total:12.2f} {'':>8} {'':>8} {spent / n * 1000:11.1f}"
        f"   (failed commands: {tally.failed})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commands", description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=N, help="incidents to send")
    parser.add_argument("--namespace", default="", help="an existing (seeded) namespace, kept as it is")
    parser.add_argument("--first", type=int, default=0, help="the first report's number (unused ones)")
    parser.add_argument("--shapes", action="store_true", help="tell reads apart by their filter's keys")
    args = parser.parse_args()
    tally, figures = asyncio.run(profile(args.n, args.namespace, args.first, args.shapes))
    report(tally, figures, args.n)


if __name__ == "__main__":
    main()
