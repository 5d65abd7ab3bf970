"""One chaos run: the system on its own infrastructure, load through the doors, faults, checks.

`make chaos` runs the full profile and writes docs/reliability.md; `make test` runs the short
one (tests/chaos/test_chaos.py). `python -m tests.chaos.scenario [short|full] [--write FILE]`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shared.settings import Settings
from tests.chaos import checks
from tests.chaos.checks import Expected, Row
from tests.chaos.load import (
    EVACUATION_COUNTRY,
    MISSIONS,
    OFFICER,
    OPERATOR,
    ORDINARY,
    SEVERITIES,
    SUPERVISOR,
    Call,
    Clients,
    KafkaDoor,
    Worker,
    departure_body,
    departures_csv,
    incident_id,
    make_workers,
    report,
)
from tests.chaos.system import ROOT, InfraError, OwnInfra, Replicas

RULES = """
version: 1
rules:
  - id: chaos-critical-ack
    description: (chaos run) a critical case must be acknowledged within 20 seconds
    trigger: {event: CaseOpened, when: {severity: critical}}
    deadline:
      subject: case
      until: [{event: CaseAcknowledged}, {event: CaseResolved}, {event: CaseClosed}]
      stages:
        - after: 20s
          actions:
            - {do: escalate, level: 1, reason: critical case not acknowledged within 20 seconds}
            - {do: notify, to: supervisor}
        - after: 20s
          actions:
            - {do: escalate, level: 2, reason: critical case not acknowledged within 40 seconds}
  - id: chaos-high-ack
    description: (chaos run) a high-severity case must be acknowledged within 30 seconds
    trigger: {event: CaseOpened, when: {severity: high}}
    deadline:
      subject: case
      until: [{event: CaseAcknowledged}, {event: CaseResolved}, {event: CaseClosed}]
      stages:
        - after: 30s
          actions:
            - {do: escalate, level: 1, reason: high-severity case not acknowledged within 30 seconds}
  - id: death-remains
    description: A death opens a remains repatriation and goes to the director
    trigger: {event: CaseOpened, when: {category: death}}
    once_per: subject
    actions:
      - {do: repatriate, kind: remains, reason: worker reported deceased}
      - {do: escalate, level: 2, reason: death of a worker}
  - id: trafficking-opened
    description: Trafficking indicators always escalate to inter-agency and are referred
    trigger: {event: CaseOpened, when: {category: trafficking}}
    once_per: subject
    actions:
      - {do: escalate, level: 3, reason: trafficking indicators}
      - {do: refer, partner: satgas-tppo, reason: referred to the anti-trafficking task force}
"""


@dataclass
class Profile:
    name: str
    incidents: int
    deaths: int
    workers: int  # registered by CSV import (besides the evacuees)
    api_departures: int
    evacuees: int
    load_seconds: float
    kills: int
    kafka_restarts: int
    db_outage_seconds: float
    converge_timeout: float
    kafka_share: float = 0.15
    retry_share: float = 0.05
    in_flight: int = 24  # reports in flight at most (all missions together)


SHORT = Profile(
    "short",
    incidents=80,
    deaths=2,
    workers=40,
    api_departures=4,
    evacuees=40,
    load_seconds=60,
    kills=3,
    kafka_restarts=0,  # a broker restart takes minutes on a busy machine: full run only
    db_outage_seconds=12,
    converge_timeout=300,
)


def full_profile(incidents: int = 2000) -> Profile:
    """The issue's full run. LINDUNGI_CHAOS_INCIDENTS scales it: on a machine where FerretDB turns
    reports into cases slowly, 2,000 take an hour to converge (see docs/reliability.md)."""
    return Profile(
        "full",
        incidents=incidents,
        deaths=10,
        workers=min(300, incidents // 5),
        api_departures=20,
        evacuees=300,
        load_seconds=max(360.0, incidents * 0.3),
        kills=12,
        kafka_restarts=1,
        db_outage_seconds=30,
        converge_timeout=max(1200.0, incidents * 3.0),
    )


FULL = full_profile(int(os.environ.get("LINDUNGI_CHAOS_INCIDENTS") or 2000))
PROFILES = {"short": SHORT, "full": FULL}


@dataclass
class Fault:
    kind: str
    what: str
    at: float  # seconds into the load
    took: float = 0.0  # seconds until back (ready, answering)
    end: float = 0.0  # monotonic time it was over


@dataclass
class Outcome:
    profile: Profile
    rows: list[Row]
    faults: list[Fault]
    figures: dict[str, Any]
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Run:
    def __init__(self, profile: Profile, workdir: Path, seed: int | None = None) -> None:
        self.p = profile
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.workdir = workdir
        self.infra = OwnInfra(workdir / "infra")
        self.settings = Settings(
            kafka_bootstrap_servers=self.infra.kafka, mongodb_uri=self.infra.mongodb, namespace="chaos_"
        )
        self.faults: list[Fault] = []
        self.db_outages: list[tuple[float, float]] = []
        self.http_incidents: list[Call] = []
        self.departure_calls: list[Call] = []
        self.import_calls: list[Call] = []
        self.evacuation: Call | None = None
        self.death_ids: set[str] = set()
        self.trafficking_ids: set[str] = set()
        self.replicas: Replicas | None = None
        self.watchers: list[asyncio.Task[None]] = []

    def service_env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("LINDUNGI_")}
        return {
            **base,
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka,
            "MONGODB_URI": self.infra.mongodb,
            "LINDUNGI_NAMESPACE": self.settings.namespace,
            "LINDUNGI_OUTBOX_POLL_SECONDS": "0.3",
            "LINDUNGI_OUTBOX_SWEEP_SECONDS": "3",
            # a decider killed between deciding and emitting is covered in seconds, not minutes
            "LINDUNGI_ESCALATION_EMIT_GRACE_SECONDS": "20",
            "LINDUNGI_ESCALATION_REPAIR_SECONDS": "5",
        }

    # ------------------------------------------------------------ load

    async def incidents(self, clients: Clients, door: KafkaDoor, workers: list[Worker]) -> None:
        p = self.p
        plan: list[tuple[str, str]] = [("death", "critical")] * p.deaths + [("trafficking", "high")]
        while len(plan) < p.incidents:
            plan.append((self.rng.choice(ORDINARY), self.rng.choice(SEVERITIES)))
        self.rng.shuffle(plan)
        by_mission: dict[str, list[tuple[str, str]]] = {m: [] for m in MISSIONS}
        for i, item in enumerate(plan):
            by_mission[list(MISSIONS)[i % len(MISSIONS)]].append(item)
        # a worker reported more than once joins the open case of the same family
        pool = {m: [w for w in workers if w.country == c] for m, c in MISSIONS.items()}

        # Open loop: reports go out on their schedule whatever the answers' latency (a mission does
        # not wait for the previous report's answer), at most `in_flight` at a time.
        limit = asyncio.Semaphore(p.in_flight)

        async def send(mission_id: str, n: int, category: str, severity: str) -> None:
            country = MISSIONS[mission_id]
            unique = category in ("death", "trafficking") or self.rng.random() < 0.5 or not pool[mission_id]
            worker = (
                make_workers(1, self.rng, countries=[country], registered_share=0)[0]
                if unique
                else self.rng.choice(pool[mission_id])
            )
            if unique:
                worker.name += f" {uuid.uuid4().hex[:6]}"
            body = report(worker, country=country, category=category, severity=severity, rng=self.rng)
            key = f"{mission_id}|{n}|{uuid.uuid4().hex[:12]}"
            iid = checks.expected_incident_id(mission_id, key)
            if category == "death":
                self.death_ids.add(iid)
            if category == "trafficking":
                self.trafficking_ids.add(iid)
            async with limit:
                if category not in ("death", "trafficking") and self.rng.random() < p.kafka_share:
                    await door.submit(mission_id, key, body, repeat=self.rng.random() < p.retry_share)
                    return
                headers = {"Authorization": f"Bearer dev-{mission_id}", "Idempotency-Key": key}
                c = await clients.call(
                    "incident", "intake", "POST", "/v1/incidents", headers=headers, key=key, json=body,
                    resource=incident_id,
                )  # fmt: skip
                self.http_incidents.append(c)
                if self.rng.random() < p.retry_share:  # the client repeats itself: same key, same body
                    c.deliberate_repeat = True
                    await clients.call(
                        "incident", "intake", "POST", "/v1/incidents", headers=headers, key=key, json=body,
                        resource=incident_id, record=c,
                    )  # fmt: skip

        async def mission(mission_id: str, items: list[tuple[str, str]]) -> None:
            gap = p.load_seconds / max(1, len(items))
            sent = []
            for n, (category, severity) in enumerate(items):
                await asyncio.sleep(gap * self.rng.uniform(0.5, 1.5))
                sent.append(asyncio.create_task(send(mission_id, n, category, severity)))
            await asyncio.gather(*sent)

        await asyncio.gather(*(mission(m, items) for m, items in by_mission.items()))

    async def registry(self, clients: Clients, workers: list[Worker]) -> None:
        """Departures by CSV import in chunks, and by the API."""
        imported = self._imported

        def departure(r: httpx.Response) -> str | None:
            j = r.json()
            if r.status_code == 409:
                return (j.get("current") or {}).get("departure_id")  # the 409 problem names the departure
            return j.get("departure_id")

        headers = {**OPERATOR, "content-type": "text/csv"}
        chunk = 100
        for i in range(0, len(workers), chunk):
            c = await clients.call(
                "import", "registry", "POST", "/v1/imports", headers=headers, key=f"import-{i}",
                content=departures_csv(workers[i : i + chunk]), resource=imported, timeout=600,
            )  # fmt: skip
            self.import_calls.append(c)
        for w in make_workers(
            self.p.api_departures, self.rng, countries=list(MISSIONS.values()), registered_share=1
        ):
            c = await clients.call(
                "departure", "registry", "POST", "/v1/departures", headers=OPERATOR, key=w.nik,
                json=departure_body(w), resource=departure,
            )  # fmt: skip
            self.departure_calls.append(c)

    async def register_evacuees(self, clients: Clients, evacuees: list[Worker]) -> None:
        """The workers of the evacuated country, by CSV import."""
        headers = {**OPERATOR, "content-type": "text/csv"}
        for i in range(0, len(evacuees), 100):
            c = await clients.call(
                "import", "registry", "POST", "/v1/imports", headers=headers, key=f"import-evacuees-{i}",
                content=departures_csv(evacuees[i : i + 100]), resource=self._imported, timeout=600,
            )  # fmt: skip
            self.import_calls.append(c)

    @staticmethod
    def _imported(r: httpx.Response) -> str | None:
        j = r.json()
        return f"{j['created'] + j['updated'] + j['unchanged']} good rows" if r.status_code == 200 else None

    async def evacuate(self, clients: Clients) -> None:
        body = {
            "request_id": f"chaos-evac-{self.seed}",
            "country": EVACUATION_COUNTRY,
            "reason": "armed conflict",
        }
        self.evacuation = await clients.call(
            "evacuation", "repatriation", "POST", "/v1/evacuations", headers=OFFICER, key=body["request_id"],
            json=body, resource=lambda r: r.json().get("repatriation_id"),
        )  # fmt: skip

    # ------------------------------------------------------------ faults

    def fault_plan(self) -> list[tuple[float, str]]:
        span = self.p.load_seconds
        plan = [(self.rng.uniform(0.05, 0.9) * span, "kill") for _ in range(self.p.kills)]
        plan += [(self.rng.uniform(0.2, 0.7) * span, "db")]
        plan += [(self.rng.uniform(0.2, 0.8) * span, "kafka") for _ in range(self.p.kafka_restarts)]
        return sorted(plan)

    async def inject(self, t0: float) -> None:
        assert self.replicas is not None
        for at, kind in self.fault_plan():
            late = time.monotonic() - (t0 + at)
            # a fault that fell due while a slow one (a broker restart) ran still comes at its own moment
            await asyncio.sleep(self.rng.uniform(2, 10) if late > 0 else -late)
            now = time.monotonic() - t0
            if kind == "kill":
                alive = self.replicas.alive()
                name = self.rng.choice(alive)
                k = self.replicas.kill(name)
                f = Fault("kill -9", f"{name} (pid {k.pid})", now)
                self.faults.append(f)
                log(f"fault: kill -9 {name} (pid {k.pid})")

                async def back(k=k, f=f) -> None:  # type: ignore[no-untyped-def]
                    await self.replicas.watch_return(k)  # type: ignore[union-attr]
                    f.took = (k.back_at or time.monotonic()) - k.at
                    f.end = k.back_at or time.monotonic()

                self.watchers.append(asyncio.create_task(back()))
            elif kind == "db":
                log(f"fault: database stopped for {self.p.db_outage_seconds:.0f} s")
                start = time.monotonic()
                await asyncio.to_thread(self.infra.stop_db)
                await asyncio.sleep(self.p.db_outage_seconds)
                await asyncio.to_thread(self.infra.start_db)
                end = time.monotonic()
                self.db_outages.append((start, end))
                self.faults.append(
                    Fault("database away", "mongoserial and FerretDB stopped", now, end - start, end)
                )
                log(f"database back after {end - start:.0f} s")
            else:
                log("fault: Kafka broker restart")
                start = time.monotonic()
                await asyncio.to_thread(self.infra.restart_kafka)
                end = time.monotonic()
                self.faults.append(
                    Fault("broker restart", "Kafka stopped and started", now, end - start, end)
                )
                log(f"broker back after {end - start:.0f} s")

    # ------------------------------------------------------------ the run

    async def run(self) -> Outcome:
        p = self.p
        durations: dict[str, float] = {}
        t = time.monotonic()
        log(f"profile {p.name}, seed {self.seed}; starting its own Kafka and database in {self.workdir}")
        try:
            await asyncio.to_thread(self.infra.up)
        except InfraError as exc:
            raise InfraError(f"the chaos run could not start its own Kafka and database: {exc}") from exc
        durations["infra start"] = time.monotonic() - t
        try:
            return await self._with_infra(durations)
        finally:
            t = time.monotonic()
            if self.replicas is not None:
                self.replicas.stop()
            try:
                await asyncio.to_thread(self.infra.down)
            except InfraError as exc:
                log(f"could not stop the chaos infra: {exc}")
            durations["stop"] = time.monotonic() - t

    async def _with_infra(self, durations: dict[str, float]) -> Outcome:
        p = self.p
        t = time.monotonic()
        self.replicas = Replicas(self.service_env(), self.workdir / "logs")
        not_ready = await self.replicas.wait_ready(300)
        if not_ready:
            raise InfraError(f"services not ready after 300 s: {not_ready}; logs in {self.workdir / 'logs'}")
        durations["services start"] = time.monotonic() - t
        log(f"10 service processes ready in {durations['services start']:.0f} s")

        clients = Clients(self.replicas.urls, give_up_after=max(240.0, p.db_outage_seconds * 4))
        door = KafkaDoor(self.settings, give_up_after=240.0)
        try:
            rules = await clients.call(
                "rules", "escalation", "POST", "/v1/rules", headers=SUPERVISOR, key="rules",
                json={"yaml": RULES, "note": "chaos run: deadlines of seconds"},
                resource=lambda r: str(r.json().get("version")),
            )  # fmt: skip
            if rules.final != 201:
                raise AssertionError(f"escalation refused the chaos rules: {rules.attempts}")
            await asyncio.sleep(3)  # every replica picks the new rules up within 2 s
            await door.send_poison()

            workers = make_workers(p.workers, self.rng, countries=list(MISSIONS.values()), registered_share=1)
            evacuees = make_workers(p.evacuees, self.rng, countries=[EVACUATION_COUNTRY], registered_share=1)
            t0 = time.monotonic()
            log(f"load: {p.incidents} incidents over ~{p.load_seconds:.0f} s, faults at random moments")

            async def registry_then_evacuate() -> None:
                await self.register_evacuees(clients, evacuees)
                log(f"workers in {EVACUATION_COUNTRY} registered ({time.monotonic() - t0:.0f} s); evacuating")
                await self.evacuate(clients)
                await self.registry(clients, workers)
                log(f"departures recorded ({time.monotonic() - t0:.0f} s into the load)")

            async def reports() -> None:
                await self.incidents(clients, door, workers)
                log(f"incidents sent ({time.monotonic() - t0:.0f} s into the load)")

            await asyncio.gather(reports(), registry_then_evacuate(), self.inject(t0))
            durations["load and faults"] = time.monotonic() - t0
            load_end = time.monotonic()
            # the faults' ends: a kill is over when its successor answers ready
            await asyncio.gather(*self.watchers)
            last_fault = max((f.end for f in self.faults), default=time.monotonic())
            log("load done; checking until everything holds")
            exp = Expected(
                http_incidents=self.http_incidents,
                kafka_incidents=door.submissions,
                death_keys=self.death_ids,
                trafficking_ids=self.trafficking_ids,
                departure_calls=self.departure_calls,
                import_calls=self.import_calls,
                evacuation=self.evacuation,
                departures_expected=len(workers) + len(evacuees) + p.api_departures,
                evacuees_expected=len(evacuees),
                poison=door.poison,
                db_outages=self.db_outages,
                all_calls=clients.calls,
            )
            t = time.monotonic()
            rows, data, _ = await checks.settle(exp, self.settings, p.converge_timeout)
            durations["convergence checks"] = time.monotonic() - t
            converged = time.monotonic() - last_fault
            after_load = time.monotonic() - load_end
        finally:
            await clients.close()
            await door.close()
        kills = [f for f in self.faults if f.kind == "kill -9"]
        figures = {
            "seed": self.seed,
            "faults": len(self.faults),
            "kills": len(kills),
            "kafka restarts": sum(1 for f in self.faults if f.kind == "broker restart"),
            "database outages": [round(e - s, 1) for s, e in self.db_outages],
            "incidents": len(data["incidents"]),
            "cases": sum(1 for c in data["cases"] if c.get("kind") == "protection"),
            "duplicates suppressed": checks.duplicates_suppressed(exp, data),
            "seconds to converge after the last fault": round(converged, 1),
            "seconds to converge after the load ended": round(after_load, 1),
            "kill -9 to the successor ready (s)": [round(f.took, 1) for f in kills],
            "other exits restarted by the supervisor": self.replicas.starts()
            - len(self.replicas.sup.procs)
            - len(kills),
            "HTTP answers 503 (database away)": sum(
                1 for c in clients.calls for a in c.attempts if a.status == 503
            ),
        }
        return Outcome(p, rows, self.faults, figures, durations)


def render(o: Outcome) -> str:
    f = o.figures
    lines = [
        f"# Reliability under faults ({o.profile.name} chaos run)",
        "",
        f"Generated by `{'make chaos' if o.profile.name == 'full' else 'pytest tests/chaos'}` "
        f"on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (seed {f['seed']}). "
        "All five services ran as separate processes, two replicas each, on a real Kafka broker "
        "and the real MongoDB-protocol server (FerretDB behind mongoserial), started for the run.",
        "",
        "## Figures",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for k, v in f.items():
        lines.append(f"| {k} | {v} |")
    lines += ["", "## Checks", "", checks.table(o.rows), "", "## Faults injected", ""]
    lines += ["| at (s into the load) | fault | what | back after (s) |", "|---|---|---|---|"]
    for x in o.faults:
        lines.append(f"| {x.at:.0f} | {x.kind} | {x.what} | {x.took:.1f} |")
    lines += ["", "## Durations", "", "| phase | seconds |", "|---|---|"]
    for k, v in o.durations.items():
        lines.append(f"| {k} | {v:.0f} |")
    p = o.profile
    lines += [
        "",
        "## The load",
        "",
        f"{p.incidents} incident reports from {len(MISSIONS)} missions ({p.kafka_share:.0%} through the "
        f"Kafka door, {p.retry_share:.0%} repeated by the client with the same Idempotency-Key and body), "
        f"{p.deaths} deaths, one trafficking report, {p.workers + p.evacuees} departures by CSV import "
        f"and {p.api_departures} by the API, an evacuation of the {p.evacuees} workers registered in "
        f"{EVACUATION_COUNTRY}, deadlines of 20-40 s loaded as a rule set. Faults: {p.kills} kill -9 of a "
        f"random replica, {p.kafka_restarts} broker restart(s), the database stopped for "
        f"{p.db_outage_seconds:.0f} s.",
        "",
    ]
    if p.name == "full" and p.incidents < 2000:
        lines += [
            f"Scaled with LINDUNGI_CHAOS_INCIDENTS={p.incidents} (the issue asks for 2,000): on this "
            "machine (2 shared cores, FerretDB on SQLite) casework turned accepted reports into cases at "
            "0.2-0.5 a second under the load, so 2,000 reports take about an hour to converge.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "short"
    write = sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None
    seed = int(os.environ["LINDUNGI_CHAOS_SEED"]) if os.environ.get("LINDUNGI_CHAOS_SEED") else None
    outcome = execute(PROFILES[name], seed=seed, write=Path(write) if write else None)
    return 0 if outcome.ok else 1


def execute(profile: Profile, *, seed: int | None = None, write: Path | None = None) -> Outcome:
    """Run a profile in a fresh work directory (kept, with the service logs, when a check fails)."""
    started = time.monotonic()
    (ROOT / ".cache").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"chaos-{profile.name}-", dir=ROOT / ".cache"))
    outcome = asyncio.run(Run(profile, workdir, seed).run())
    outcome.durations["total"] = time.monotonic() - started
    text = render(outcome)
    print(text, flush=True)
    if write:
        write.write_text(text)
    if outcome.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"service logs kept in {workdir / 'logs'}", flush=True)
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
