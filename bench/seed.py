"""The national seed: a realistic year of Lindungi, loaded straight into the services' databases.

`python -m bench.seed [--scale 0.01] [--namespace NS]` (Settings from the environment):
- registry: 300,000 departures (workers, employers, agencies) across the 38 provinces, every
  sector and the missions' destination countries; intake's and repatriation's own departure
  projections of them;
- intake: 70,000 incidents (most matched to a seeded worker, some non-procedural);
  casework: the cases they become, moved through every state with short timelines (new and
  triaged ones wait in their queues);
- escalation: the default rule set and 10,000 pending chains (timers) of open cases.
Every document is made by the services' own functions (registry's record_departure, intake's
submit and project, repatriation's departure_doc, casework's on_incident and desk plans,
escalation's evaluate and chain_doc), run against bench.memorydb, then bulk-inserted
(insert_many, unordered). PII is encrypted and hashed by the services' vault. No event is
published: the outbox entries the functions attach are dropped (the seed is a store, for reads
and timers). Rerunnable: ids are deterministic, and a second run skips what exists.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError
from rich.progress import Progress

from bench.memorydb import Doc, MemoryDb
from services.casework import changes as cw_changes
from services.casework import desk as cw_desk
from services.casework import domain as cw_domain
from services.casework import placement as cw_placement
from services.casework import store as cw_store
from services.escalation import chains as esc_chains
from services.escalation import engine as esc_engine
from services.escalation import evaluation as esc_evaluation
from services.escalation import ruleset as esc_ruleset
from services.escalation import store as esc_store
from services.intake import service as in_service
from services.intake import store as in_store
from services.registry import domain as reg_domain
from services.registry import service as reg_service
from services.registry import store as reg_store
from services.registry.models import DepartureIn
from services.repatriation import store as rep_store
from shared import audit
from shared.envelope import Envelope
from shared.events.intake import IncidentAccepted, IncidentReport
from shared.events.registry import DepartureRecorded, DepartureStatus, Scheme, Sector, SkillLevel
from shared.outbox import OUTBOX, PENDING, Outbox
from shared.pii import vault_for
from shared.settings import Settings
from shared.vocab import Category, Severity

DEPARTURES, INCIDENTS, CHAINS = 300_000, 70_000, 10_000
YEAR_END = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
YEAR_START = YEAR_END - timedelta(days=365)
BATCH = 1000
MISSIONS = Path(__file__).parent.parent / "shared" / "data" / "missions.yaml"
# Destinations weighted roughly as placements go (Malaysia, Taiwan, Hong Kong, Korea, Japan, ...).
WEIGHT = {"MY": 25, "TW": 22, "HK": 20, "KR": 8, "JP": 8, "SG": 5, "SA": 4, "AE": 2, "QA": 1, "KW": 1}
FIRST = (
    "Siti Nur Dewi Sri Rina Ayu Putri Wati Indah Lestari Budi Agus Eko Joko Rudi Hendra Dedi Ahmad".split()
)
LAST = (
    "Rahayu Wahyuni Susanti Hartono Saputra Setiawan Kurniawan Pratama Hidayat Nugroho Wibowo Santoso".split()
)
# Each case's state, and the desk actions that take a new case there (a short timeline each).
PATHS: dict[str, list[cw_domain.Action]] = {
    "new": [],
    "triaged": [cw_domain.Action.TRIAGE],
    "assigned": [cw_domain.Action.TRIAGE, cw_domain.Action.CLAIM],
    "in_progress": [cw_domain.Action.TRIAGE, cw_domain.Action.CLAIM, cw_domain.Action.ACKNOWLEDGE],
    "awaiting_repatriation": [
        cw_domain.Action.CLAIM,
        cw_domain.Action.ACKNOWLEDGE,
        cw_domain.Action.AWAIT_REPATRIATION,
    ],
    "resolved": [cw_domain.Action.CLAIM, cw_domain.Action.ACKNOWLEDGE, cw_domain.Action.RESOLVE],
    "closed": [
        cw_domain.Action.CLAIM,
        cw_domain.Action.ACKNOWLEDGE,
        cw_domain.Action.RESOLVE,
        cw_domain.Action.CLOSE,
    ],
}
# A case's state by its age at the year's end. The desk claims a case within days (escalation's
# acknowledgement rules see to it), so a case waits in its queue (new, triaged) or sits claimed and
# not yet acknowledged (assigned) when it is recent; a few older ones have stalled in a queue.
# Older cases are worked, wait for repatriation, or are resolved or closed. (Until 30 Nov 2026 the
# state did not depend on the age: 8 % of the year's cases waited, some since the year's first
# week, so the desk's queues grew with the year; docs/performance.md, "national seed".)
RECENT = timedelta(days=3)
RECENT_WEIGHT = {"new": 30, "triaged": 30, "assigned": 15, "in_progress": 25}
STATE_WEIGHT = {
    "new": 0.25,
    "triaged": 0.25,
    "in_progress": 14,
    "awaiting_repatriation": 2,
    "resolved": 14,
    "closed": 59,
}


def state_weights(age: timedelta) -> tuple[list[str], list[float]]:
    """The states a case opened `age` before the year's end may be in, and their weights."""
    weights = RECENT_WEIGHT if age <= RECENT else STATE_WEIGHT
    return list(weights), [float(w) for w in weights.values()]


class _Clock:
    def __init__(self) -> None:
        self.at = YEAR_START

    def now(self) -> datetime:
        return self.at


@dataclass
class Counts:
    written: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


async def _load(db: Any, collection: str, docs: list[Doc], counts: Counts, label: str) -> None:
    """Bulk-insert, unordered; documents that exist already (a rerun) are skipped."""
    for d in docs:
        d.pop(OUTBOX, None)  # no event is published: the seed is a store
        d.pop(PENDING, None)
    key = f"{label}.{collection}"
    for i in range(0, len(docs), BATCH):
        part = docs[i : i + BATCH]
        try:
            res = await db[collection].insert_many(part, ordered=False)
            n = len(res.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            n = exc.details.get("nInserted", len(part) - len(errors))
        counts.written[key] = counts.written.get(key, 0) + n
        counts.skipped[key] = counts.skipped.get(key, 0) + len(part) - n


def _nik(rng: random.Random, dob: date, sex: str) -> str:
    day = dob.day + (40 if sex == "F" else 0)
    region = f"{rng.randint(11, 94):02d}{rng.randint(1, 99):02d}{rng.randint(1, 99):02d}"
    return f"{region}{day:02d}{dob:%m%y}{rng.randint(1, 9999):04d}"


def _countries() -> tuple[list[str], list[int], dict[str, str]]:
    missions = yaml.safe_load(MISSIONS.read_text())["missions"]
    mission_of: dict[str, str] = {}
    for m in missions:
        for c in m["countries"]:
            mission_of.setdefault(c, m["id"])
    countries = sorted(mission_of)
    return countries, [WEIGHT.get(c, 1) for c in countries], mission_of


def _offline_runtime(db: MemoryDb, name: str, clock: Any, vault: Any, settings: Settings) -> SimpleNamespace:
    """What a service's functions read of their Runtime, against the in-memory store: no broker,
    and an outbox whose entries stay in the documents (the seed drops them before loading)."""
    return SimpleNamespace(
        name=name,
        db=db,
        clock=clock,
        vault=vault,
        settings=settings,
        outbox=Outbox(source=name, clock=clock),
        relay=SimpleNamespace(wake=lambda *ids: None),
    )


async def seed(settings: Settings, scale: float = 1.0, *, progress: bool = True) -> dict[str, Any]:
    """Load the year into settings' namespace; returns counts and seconds per phase."""
    rng = random.Random(11)
    n_dep, n_inc, n_chain = (max(1, round(x * scale)) for x in (DEPARTURES, INCIDENTS, CHAINS))
    clock = _Clock()
    vault = vault_for(settings)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongodb_uri)
    real = {
        s: client[settings.database(s)]
        for s in ("registry", "intake", "casework", "escalation", "repatriation")
    }
    counts, timings = Counts(), {}
    countries, weights, mission_of = _countries()
    try:
        await reg_store.ensure_indexes(real["registry"])
        await in_store.ensure_indexes(real["intake"])
        await cw_store.ensure_indexes(real["casework"])
        await esc_store.ensure_indexes(real["escalation"])
        await rep_store.ensure_indexes(real["repatriation"])
        for db in real.values():
            await audit.ensure_indexes(db)
        intake_mem = MemoryDb("intake")  # intake's projection stays here too: incidents match against it
        workers: list[tuple[DepartureIn, str]] = []
        with Progress(disable=not progress) as bar:
            # ---- registry, and the two projections of its departures
            t0 = time.monotonic()
            task = bar.add_task("departures", total=n_dep)
            reg_mem = MemoryDb("registry")
            reg_rt: Any = _offline_runtime(reg_mem, "registry", clock, vault, settings)
            for i in range(n_dep):
                sex = rng.choice("FFM")
                dob = date(rng.randint(1972, 2004), rng.randint(1, 12), rng.randint(1, 28))
                when = YEAR_START + timedelta(days=rng.uniform(0, 365))
                country = rng.choices(countries, weights)[0]
                status = DepartureStatus.REGISTERED
                if when < YEAR_END - timedelta(days=14):
                    status = rng.choices(
                        [DepartureStatus.DEPARTED, DepartureStatus.ACTIVE_ABROAD, DepartureStatus.RETURNED],
                        [15, 80, 5],
                    )[0]
                scheme = rng.choices(list(Scheme), [70, 10, 10, 10])[0]
                agency = f"p3mi-{rng.randint(1, 400):03d}" if scheme == Scheme.AGENCY else None
                data = DepartureIn(
                    full_name=f"{rng.choice(FIRST)} {rng.choice(FIRST)} {rng.choice(LAST)}",
                    date_of_birth=dob,
                    sex=sex,
                    nik=_nik(rng, dob, sex),
                    passport_number=f"{rng.choice('BCE')}{rng.randint(1000000, 9999999)}",
                    home_province=rng.choice(reg_domain.PROVINCES),
                    home_regency=None,
                    phone=f"+62 81{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                    destination_country=country,
                    sector=rng.choice(list(Sector)),
                    skill_level=rng.choice(list(SkillLevel)),
                    scheme=scheme,
                    agency_id=agency,
                    agency_licence=f"KEP.{agency[5:]}/2024" if agency else None,
                    employer_name=f"Employer {country} {rng.randint(1, 3000)}",
                    departure_date=when.date(),
                    status=status,
                )
                clock.at = when - timedelta(days=30) if status != DepartureStatus.REGISTERED else when
                doc, _ = await reg_service.record_departure(rt=reg_rt, data=data, upsert=True)
                workers.append((data, doc["worker_id"]))
                raw = reg_mem[reg_store.DEPARTURES].docs[doc["_id"]]
                event = DepartureRecorded.model_validate(raw[OUTBOX][-1]["envelope"]["data"])
                await in_service.project(db=intake_mem, event=event)  # type: ignore[arg-type]
                if (i + 1) % BATCH == 0 or i == n_dep - 1:
                    for coll in (
                        reg_store.WORKERS,
                        reg_store.DEPARTURES,
                    ):
                        docs = reg_mem.take(coll)
                        events = []
                        if coll == reg_store.DEPARTURES:  # each departure's latest snapshot
                            snapshots = [d[OUTBOX][-1]["envelope"]["data"] for d in docs]
                            events = [DepartureRecorded.model_validate(x) for x in snapshots]
                        await _load(real["registry"], coll, docs, counts, "registry")
                        if events:
                            await _load(
                                real["repatriation"],
                                rep_store.DEPARTURES,
                                [rep_store.departure_doc(e) for e in events],
                                counts,
                                "repatriation",
                            )
                    bar.update(task, completed=i + 1)
            for coll in (reg_store.EMPLOYERS, reg_store.AGENCIES):  # shared by many departures: once
                await _load(real["registry"], coll, reg_mem.take(coll), counts, "registry")
            for coll in (in_store.DEPARTURES, in_store.DEPARTURE_KEYS):
                await _load(real["intake"], coll, list(intake_mem[coll].docs.values()), counts, "intake")
            timings["departures"] = time.monotonic() - t0

            # ---- incidents, and the cases they become
            t0 = time.monotonic()
            task = bar.add_task("incidents -> cases", total=n_inc)
            in_rt: Any = _offline_runtime(intake_mem, "intake", clock, vault, settings)
            cw_mem = MemoryDb("casework")
            cw_rt: Any = _offline_runtime(cw_mem, "casework", clock, vault, settings)
            open_events: list[list[esc_ruleset.Incoming]] = []
            officers = [f"seed-officer-{k:02d}" for k in range(40)]
            for i in range(n_inc):
                occurred = YEAR_START + timedelta(days=365 * i / n_inc, minutes=rng.uniform(0, 500))
                clock.at = occurred + timedelta(hours=rng.uniform(1, 48))
                worker: dict[str, Any] | None
                if rng.random() < 0.85 and workers:
                    data, _wid = rng.choice(workers)
                    country = data.destination_country
                    worker = {
                        "full_name": data.full_name,
                        "date_of_birth": data.date_of_birth.isoformat(),
                        "passport_number": data.passport_number,
                    }
                else:  # not in the registry: a non-procedural worker
                    country = rng.choices(countries, weights)[0]
                    dob = date(rng.randint(1975, 2003), rng.randint(1, 12), rng.randint(1, 28))
                    worker = {
                        "full_name": f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}",
                        "date_of_birth": dob.isoformat(),
                    }
                report = IncidentReport.model_validate(
                    {
                        "mission_reference": f"SEED-{i:06d}",
                        "country": country,
                        "occurred_at": occurred.isoformat(),
                        "category": rng.choice(list(Category)),
                        "severity": rng.choices(list(Severity), [20, 40, 30, 10])[0],
                        "narrative": "Seeded report: the worker asked the mission for help.",
                        "worker": worker,
                    }
                )
                submitter = in_service.Submitter(
                    mission_id=mission_of[country], countries=frozenset([country])
                )
                incident, new = await in_service.submit(
                    rt=in_rt, submitter=submitter, report=report, idempotency_key=None, via="http"
                )
                if new:
                    raw = intake_mem[in_store.INCIDENTS].docs[incident["_id"]]
                    env = Envelope.model_validate(raw[OUTBOX][0]["envelope"])
                    accepted = IncidentAccepted.model_validate(env.data)
                    case_id = await cw_placement.on_incident(cw_rt, event_id=env.id, incident=accepted)
                    case = cw_mem[cw_store.CASES].docs.get(case_id)
                    if case is not None and case["status"] == "new" and len(case["incident_ids"]) == 1:
                        target = rng.choices(*state_weights(YEAR_END - clock.at))[0]
                        officer = rng.choice(officers)
                        for k, action in enumerate(PATHS[target]):
                            after_claim = k > 0 and PATHS[target][k - 1] == cw_domain.Action.CLAIM
                            # acknowledged within the claim's lease; other steps hours apart
                            step = timedelta(minutes=rng.uniform(1, 10)) if after_claim else None
                            clock.at += step or timedelta(hours=rng.uniform(0.2, 30))

                            def build(
                                doc: Doc, action: cw_domain.Action = action, officer: str = officer
                            ) -> Any:
                                return cw_desk.desk_update(
                                    doc,
                                    action,
                                    actor=officer,
                                    roles=frozenset({"officer", "supervisor"}),
                                    now=clock.now(),
                                    reason="seeded",
                                    resolution="resolved_in_country" if action == "resolve" else None,
                                )

                            await cw_changes.change(cw_rt, case_id, build)
                if (i + 1) % BATCH == 0 or i == n_inc - 1:
                    bar.update(task, completed=i + 1)
            # the year's cases and incidents stay in memory until here: a later report joins an
            # earlier open case, and links back to earlier incidents, as it does in the services
            cases = cw_mem.take(cw_store.CASES)
            for c in cases:
                if c["status"] == "assigned":
                    # held by its officer as a live desk's claims are, over the same coming month
                    # as the chains below: a claim of months ago would have expired, and casework's
                    # lease sweeper would release them all during the first minutes of a benchmark
                    c["lease_until"] = YEAR_END + timedelta(days=30)
            for c in cases:  # the open cases' events, for escalation's chains below
                if c["status"] in ("new", "triaged", "assigned", "in_progress"):
                    envs = [Envelope.model_validate(e["envelope"]) for e in c.get(OUTBOX, [])]
                    # the trigger's id is the case's and the event's (envelope ids are random):
                    # a rerun then makes the same chain ids, and skips them
                    incoming = [
                        esc_ruleset.Incoming.of(
                            id=f"seed-{c['_id']}-{e.type}", type=e.type, time=e.time, data=e.data
                        )
                        for e in envs
                    ]
                    wanted = "CaseAcknowledged" if c["status"] == "in_progress" else "CaseOpened"
                    picked = [x for x in incoming if x is not None and x.name == wanted]
                    if picked:
                        open_events.append(picked)
            # placement's notes before the cases they name, as in the service (a casework start
            # may have marked the notes complete already), then the cases, then the markers
            for notes in (cw_store.PLACED, cw_store.HOLDERS):
                await _load(real["casework"], notes, cw_mem.take(notes), counts, "casework")
            await _load(real["casework"], cw_store.CASES, cases, counts, "casework")
            await cw_store.mark_placed_complete(real["casework"])  # placement noted every join it made
            await cw_store.mark_holders_complete(real["casework"])  # and every case it put a report into
            for coll in list(cw_mem.collections):
                await _load(real["casework"], coll, cw_mem.take(coll), counts, "casework")
            for coll in list(intake_mem.collections):
                if coll not in (in_store.DEPARTURES, in_store.DEPARTURE_KEYS):
                    await _load(real["intake"], coll, intake_mem.take(coll), counts, "intake")
            timings["incidents"] = time.monotonic() - t0

            # ---- escalation: the default rules, and pending chains of open cases
            t0 = time.monotonic()
            task = bar.add_task("escalation chains", total=n_chain)
            text = esc_engine.DEFAULT_RULES.read_text()
            rules = esc_ruleset.load_rules(text)
            await esc_store.add_ruleset(
                real["escalation"],
                {"yaml": text, "loaded_at": YEAR_START, "loaded_by": "default", "note": "default rules"},
                first_only=True,
            )
            esc_mem = MemoryDb("escalation")
            chains: list[Doc] = []
            rng.shuffle(open_events)
            for events in open_events:
                if len(chains) >= n_chain:
                    break
                # the chains still running: a waiting case's acknowledgement chain, an acknowledged
                # one's resolution chain (as escalation started them from the case's own events)
                last = events[-1]
                for start in esc_evaluation.evaluate(rules, 1, last).starts:
                    doc = esc_chains.chain_doc(start, created_at=last.time)
                    # pending, due over the coming month: the timers of the year's open cases
                    doc["due_at"] = YEAR_END + timedelta(seconds=rng.uniform(3600, 30 * 86400))
                    chains.append(doc)
                    await esc_store.link_subject(esc_mem, doc["subject"], doc["rule_id"], doc["_id"])  # type: ignore[arg-type]
            await _load(real["escalation"], esc_store.CHAINS, chains, counts, "escalation")
            await _load(
                real["escalation"], esc_store.SUBJECTS, esc_mem.take(esc_store.SUBJECTS), counts, "escalation"
            )
            bar.update(task, completed=len(chains))
            timings["chains"] = time.monotonic() - t0
    finally:
        await client.close()
    sample = {  # one of each, for a test to read back through the services' own APIs
        "nik": workers[0][0].nik,
        "worker_id": workers[0][1],
        "case_id": cases[0]["_id"] if cases else None,
        "case_status": cases[0]["status"] if cases else None,
        "chain_case_id": chains[0]["facts"]["case_id"] if chains else None,
    }
    return {
        "scale": scale,
        "written": counts.written,
        "skipped": counts.skipped,
        "seconds": timings,
        "chains": len(chains),
        "sample": sample,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.seed", description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument(
        "--scale", type=float, default=1.0, help="fraction of a national year (0.01: 3,000 departures)"
    )
    ap.add_argument("--namespace", default=None, help="the namespace to load (default: LINDUNGI_NAMESPACE)")
    args = ap.parse_args(argv)
    settings = Settings() if args.namespace is None else Settings(namespace=args.namespace)
    t0 = time.monotonic()
    result = asyncio.run(seed(settings, args.scale))
    print(
        f"national seed at scale {args.scale} into namespace {settings.namespace!r}"
        f" in {time.monotonic() - t0:.1f}s"
    )
    for key in sorted(result["written"]):
        print(f"  {key:40s} written {result['written'][key]:8d}   existed {result['skipped'][key]:8d}")
    for phase, s in result["seconds"].items():
        print(f"  {phase:20s} {s:7.1f}s")
    print("  no events were published (the seed is a store, for reads and timers)")


if __name__ == "__main__":
    main()
