"""Issue 11's burst: N reports from 5 missions at once, to cases and to escalation's effect.

`python -m bench.burst [N] [--missions M] [--in-flight F] [--commands] [--shapes]` (default
1,000 reports, 5 missions, 4 requests in flight per mission): starts intake, casework and
escalation in-process on the real Kafka and MongoDB (Settings() from the environment, a fresh
namespace, dropped at the end). Each
mission (its development credential `Bearer dev-<id>`, reporting in a country of its own
jurisdiction) is a stream of its own, F posts in flight, all streams at once; report i comes
from mission i mod M and names a distinct worker (bench.casework.incident_report). One warm-up
report goes first, followed until casework applied escalation's actions on its case: the burst
meets consumers that have joined their groups, as in a system running before it.

Measured, on this process's clock:
- accepted: first POST to the last answer, and the POSTs' p50/p99;
- a case: casework has stored the case of the report (casework's after-handle seam on the
  IncidentAccepted, as bench.casework);
- escalation's effect: escalation has handled the case's CaseOpened (its after-handle seam on
  CaseOpened). Handling a CaseOpened runs the rules in force on it, and what they decide is stored
  when the handler returns: deadline chains started (durable timers: with the default rules every
  case gets triage-24h, a critical one critical-ack-1h, a high one high-ack-4h) and immediate
  firings decided and put in escalation's outbox (a worker with no departure record is tagged
  non-procedural and escalated to level 1; a death opens a remains repatriation, escalates to
  the director and notifies; trafficking escalates to inter-agency and is referred);
- also, the immediate firings' actions (EscalationAction) applied to their cases by casework (its
  after-handle seam on them): the effect as the desk sees it.
Prints each "last ... after the last POST" (the last POST's answer) beside issue 11's goal (a case
within 30 s, every escalation effect within 60 s), p50/p99 after each report's own POST, the
counts, and the events escalation handled meanwhile by type (its load: the cases' own later
events, such as the tags and escalations casework applied, come back to it too). Nothing passes
or fails on speed; a report that is not a case, a case escalation did not handle, or an action
casework did not apply, within TIMEOUT after the last POST raises.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.casework import _pct, _running, incident_report
from bench.commands import table, watch
from services.casework import store as casework_store
from services.casework.app import create_app as casework_app
from services.escalation import store as escalation_store
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from shared.auth import dev_token
from shared.events.casework import CaseOpened
from shared.events.escalation import EscalationAction
from shared.events.intake import IncidentAccepted
from shared.namespace import drop_namespace
from shared.settings import Settings

N = 1000  # issue 11: "a burst of 1,000 reports from 5 missions"
# Missions and a country of their jurisdiction (shared/data/missions.yaml): the first M report.
MISSIONS = [
    ("kbri-kuala-lumpur", "MY"),
    ("kdei-taipei", "TW"),
    ("kjri-hong-kong", "HK"),
    ("kbri-riyadh", "SA"),
    ("kbri-seoul", "KR"),
    ("kbri-singapore", "SG"),
    ("kbri-tokyo", "JP"),
    ("kbri-abu-dhabi", "AE"),
]
IN_FLIGHT = 4  # posts in flight per mission: a mission system sending what it collected
TIMEOUT = 600.0  # seconds after the last POST before a missing case (or evaluation) raises
POLL = 0.05  # seconds between looks at what the hooks recorded (their times are exact)
GOAL_CASE_S = 30.0
GOAL_EFFECT_S = 60.0


@dataclass
class Burst:
    """What the run saw: times (perf_counter) by incident, case and action envelope."""

    posted: dict[str, float] = field(default_factory=dict)  # incident -> its POST sent
    answered: dict[str, float] = field(default_factory=dict)  # incident -> its POST answered
    stored: dict[str, float] = field(default_factory=dict)  # incident -> casework stored its case
    evaluated: dict[str, float] = field(default_factory=dict)  # case -> escalation handled CaseOpened
    case_incident: dict[str, str] = field(default_factory=dict)  # case -> the incident that opened it
    applied: dict[str, float] = field(default_factory=dict)  # action envelope -> casework applied it
    applied_case: dict[str, str] = field(default_factory=dict)  # action envelope -> its case
    handled: Counter[str] = field(default_factory=Counter)  # events escalation handled, by type


async def _until(done: Any, deadline: float) -> bool:
    """Poll `done()` until true or the deadline (perf_counter) passed."""
    while not done():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(POLL)
    return True


async def _cases_of(db: Any, incidents: list[str]) -> set[str]:
    """The ids of the cases that hold these incidents (casework's index on incident_ids)."""
    out: set[str] = set()
    for lo in range(0, len(incidents), 500):
        part = incidents[lo : lo + 500]
        out |= {
            d["_id"] async for d in db[casework_store.CASES].find({"incident_ids": {"$in": part}}, {"_id": 1})
        }
    return out


async def run(settings: Settings, n: int, missions: int = 5, in_flight: int = IN_FLIGHT) -> dict[str, Any]:
    """Post the burst, wait for every case, escalation's handling and the actions applied; the figures."""
    chosen = MISSIONS[:missions]
    b = Burst()
    cw = casework_app(settings)
    esc = escalation_app(settings)

    async def casework_seen(env: Any) -> None:
        # runs after casework's handler returned: its effect is stored
        if env.type == IncidentAccepted.type:
            b.stored.setdefault(env.data["incident_id"], time.perf_counter())
        elif env.type == EscalationAction.type:
            b.applied.setdefault(env.id, time.perf_counter())
            b.applied_case.setdefault(env.id, env.data.get("case_id") or "")

    async def escalation_seen(env: Any) -> None:
        b.handled[env.type.removeprefix("lindungi.")] += 1
        if env.type == CaseOpened.type:
            b.evaluated.setdefault(env.data["case_id"], time.perf_counter())
            b.case_incident.setdefault(env.data["case_id"], env.data["incident_id"])

    cw.state.runtime.after_handle.append(casework_seen)
    esc.state.runtime.after_handle.append(escalation_seen)
    async with (
        _running(intake_app(settings)) as intake,
        _running(cw),
        _running(esc),
    ):

        async def stream(m: int, mission: str, country: str) -> None:
            headers = {"authorization": f"Bearer {dev_token(mission)}"}
            mine = iter(range(m, n, len(chosen)))

            async def sender() -> None:
                for i in mine:  # the senders share the mission's iterator: each report once
                    t0 = time.perf_counter()
                    body = incident_report(i, mission_id=mission, country=country)
                    r = await intake.post("/v1/incidents", json=body, headers=headers)
                    if r.status_code not in (200, 202):
                        raise RuntimeError(f"report {i} from {mission}: HTTP {r.status_code} {r.text[:300]}")
                    incident = r.json()["incident_id"]
                    b.posted[incident] = t0
                    b.answered[incident] = time.perf_counter()

            await asyncio.gather(*(sender() for _ in range(in_flight)))

        # A warm-up report first, followed to escalation and back to casework: the consumers have
        # joined their groups (seconds after a start), as in a system running before the burst.
        mission, country = chosen[0]
        headers = {"authorization": f"Bearer {dev_token(mission)}"}
        r = await intake.post(
            "/v1/incidents", json=incident_report(n, mission_id=mission, country=country), headers=headers
        )
        r.raise_for_status()
        warm = r.json()["incident_id"]
        warm_until = time.perf_counter() + TIMEOUT
        if not await _until(lambda: warm in b.case_incident.values() and b.applied, warm_until):
            raise RuntimeError(
                f"the warm-up report was not a case handled by escalation within {TIMEOUT:.0f} s"
            )

        b.handled.clear()  # from here: the burst's (a straggler of the warm-up aside)
        first = time.perf_counter()
        await asyncio.gather(*(stream(m, mid, c) for m, (mid, c) in enumerate(chosen)))
        last = max(b.answered.values())
        deadline = last + TIMEOUT
        if len(b.posted) != n:
            raise RuntimeError(f"{n} reports posted but {len(b.posted)} distinct incidents accepted")

        all_cases = await _until(lambda: b.posted.keys() <= b.stored.keys(), deadline)
        # The burst's cases (each sends one CaseOpened): final once every report is stored.
        cases = await _cases_of(cw.state.runtime.db, list(b.posted))
        all_evaluated = await _until(lambda: cases <= b.evaluated.keys(), deadline)
        # What escalation decided at once on these cases: each EscalationAction it put in its
        # outbox (stored before its handler returned) reaches casework's consumer.
        edb = esc.state.runtime.db
        subjects = {f"case:{c}" for c in cases}
        firings: Counter[str] = Counter()
        expected: set[str] = set()
        async for d in edb[escalation_store.DECIDED].find(
            {"kind": "now"}, {"rule_id": 1, "subject": 1, "events": 1}
        ):
            if d.get("subject") not in subjects:
                continue
            firings[d["rule_id"]] += 1
            expected |= {
                e["envelope"]["id"]
                for e in d.get("events") or []
                if e["envelope"]["type"] == EscalationAction.type
            }
        all_applied = await _until(lambda: expected <= b.applied.keys(), deadline)
        chains: Counter[str] = Counter()
        chained: set[str] = set()
        for coll in (escalation_store.CHAINS, escalation_store.CLOSED):
            async for c in edb[coll].find({}, {"rule_id": 1, "subject": 1}):
                if c["subject"] in subjects:
                    chains[c["rule_id"]] += 1
                    chained.add(c["subject"])
    missing = []
    if not all_cases:
        missing.append(f"only {len(b.posted.keys() & b.stored.keys())} of {n} reports became cases")
    if not all_evaluated:
        missing.append(
            f"escalation handled only {len(cases & b.evaluated.keys())} of {len(cases)} CaseOpened"
        )
    if not all_applied:
        missing.append(f"casework applied only {len(expected & b.applied.keys())} of {len(expected)} actions")
    if missing:
        raise RuntimeError("; ".join(missing) + f", {TIMEOUT:.0f} s after the last POST")

    post_s = [b.answered[i] - b.posted[i] for i in b.posted]
    case_s = [b.stored[i] - b.posted[i] for i in b.posted]
    effect_s = [b.evaluated[c] - b.posted[b.case_incident[c]] for c in cases]
    applied = [b.applied[a] for a in expected]
    return {
        "n": n,
        "missions": chosen,
        "in_flight": in_flight,
        "accepted_s": last - first,
        "post_p50": _pct(post_s, 0.5),
        "post_p99": _pct(post_s, 0.99),
        "last_case_s": max(b.stored[i] for i in b.posted) - last,
        "case_p50": _pct(case_s, 0.5),
        "case_p99": _pct(case_s, 0.99),
        "last_effect_s": max(b.evaluated[c] for c in cases) - last,
        "effect_p50": _pct(effect_s, 0.5),
        "effect_p99": _pct(effect_s, 0.99),
        "last_applied_s": (max(applied) - last) if applied else float("nan"),
        "cases": len(cases),
        "evaluated": len(cases & b.evaluated.keys()),
        "chains": dict(chains),
        "chained_cases": len(chained),
        "firings": dict(firings),
        "actions": len(expected),
        "handled": dict(b.handled),
        "action_cases": len({b.applied_case[a] for a in expected} - {""}),
    }


async def bench(
    n: int = N, missions: int = 5, in_flight: int = IN_FLIGHT, commands: bool = False, shapes: bool = False
) -> dict[str, Any]:
    """The burst in a fresh namespace, dropped afterwards; `commands`: with PyMongo command
    monitoring on (bench.commands' tally, under "tally": it slows the run a little; `shapes`: finds
    and updates told apart by their filter's keys)."""
    settings = Settings(namespace=f"burst{uuid.uuid4().hex[:8]}_", log_level="WARNING")
    tally = watch(settings.namespace, shapes) if commands or shapes else None
    try:
        return {**await run(settings, n, missions, in_flight), "tally": tally}
    finally:
        await drop_namespace(settings)


def _by_rule(counts: dict[str, int]) -> str:
    return ", ".join(f"{rule} {k}" for rule, k in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def report(r: dict[str, Any]) -> None:
    n, last = r["n"], "after the last POST"
    who = ", ".join(f"{m} {c}" for m, c in r["missions"])
    print(f"burst: {n} reports from {len(r['missions'])} missions ({who}), {r['in_flight']} in flight each")
    print("  (intake HTTP -> Kafka -> casework -> MongoDB -> Kafka -> escalation; all in this process)")
    rate = n / r["accepted_s"]
    print(
        f"  accepted in {r['accepted_s']:.1f} s (first POST to last answer, {rate:.1f} reports/s);"
        f" POST p50 {r['post_p50'] * 1000:.0f} ms, p99 {r['post_p99'] * 1000:.0f} ms"
    )
    print(
        f"  last case {r['last_case_s']:.1f} s {last} (goal <= {GOAL_CASE_S:.0f} s);"
        f" cases p50 {r['case_p50']:.2f} s, p99 {r['case_p99']:.2f} s after their POST"
    )
    print(
        f"  last escalation effect {r['last_effect_s']:.1f} s {last} (goal <= {GOAL_EFFECT_S:.0f} s);"
        f" p50 {r['effect_p50']:.2f} s, p99 {r['effect_p99']:.2f} s after their POST"
    )
    print("    (effect: escalation handled the case's CaseOpened: rules run, chains and firings stored)")
    print(
        f"  its {r['actions']} immediate actions applied to {r['action_cases']} cases by casework:"
        f" the last {r['last_applied_s']:.1f} s {last}"
    )
    print(f"  counts: {n} posted, {r['cases']} cases, {r['evaluated']} evaluated by escalation")
    print(
        f"  chains started: {sum(r['chains'].values())} on {r['chained_cases']} cases"
        f" ({_by_rule(r['chains'])})"
    )
    print(f"  immediate firings: {sum(r['firings'].values())} ({_by_rule(r['firings'])})")
    print(f"  events escalation handled meanwhile: {sum(r['handled'].values())} ({_by_rule(r['handled'])})")
    if r.get("tally") is not None:
        print("database commands, per report (the warm-up's included):")
        table(r["tally"], n, "report")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.burst")
    ap.add_argument("n", nargs="?", type=int, default=N, help="reports in the burst")
    ap.add_argument(
        "--missions", type=int, default=5, choices=range(1, len(MISSIONS) + 1), help="missions reporting"
    )
    ap.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="posts in flight per mission")
    ap.add_argument(
        "--commands", action="store_true", help="also count every database command, by service and collection"
    )
    ap.add_argument("--shapes", action="store_true", help="--commands, by the filter's keys too")
    args = ap.parse_args()
    report(asyncio.run(bench(args.n, args.missions, args.in_flight, args.commands, args.shapes)))


if __name__ == "__main__":
    main()
