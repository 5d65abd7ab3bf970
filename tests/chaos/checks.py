"""What must hold after the faults, checked against the services' databases and topics.

The checks read what the services stored (each service's own database) and every message on
the topics, and count effects by event id: duplicates on the wire are allowed (at least once),
duplicate effects are not.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.escalation import chains as esc_chains
from services.intake import domain as intake_domain
from shared import topics
from shared.kafka import read_topics
from shared.settings import Settings
from tests.chaos.load import EVACUATION_COUNTRY, Call, Submission

CHAOS_RULES = ("chaos-critical-ack", "chaos-high-ack")


@dataclass
class Row:
    check: str
    ok: bool
    figures: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Expected:
    """What the load did, as the clients saw it."""

    http_incidents: list[Call]
    kafka_incidents: list[Submission]
    death_keys: set[str]  # incident ids of reported deaths
    trafficking_ids: set[str]
    departure_calls: list[Call]
    import_calls: list[Call]
    evacuation: Call | None
    departures_expected: int  # distinct workers imported or posted
    evacuees_expected: int
    poison: list[tuple[str, str]]
    db_outages: list[tuple[float, float]]  # monotonic (stopped, answering again)
    all_calls: list[Call]


async def read_all(settings: Settings, name: str) -> list[Any]:
    """Every record of a topic, up to its end now."""
    return await read_topics(settings, [settings.topic(name)])


async def consumer_lag(settings: Settings) -> dict[str, int]:
    """Per consumer group of the run: messages not yet committed (0: caught up)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        groups = [
            g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(settings.namespace)
        ]
        lag: dict[str, int] = {}
        for g in sorted(groups):
            # groups are named <namespace><service>.<topic>: compare with every partition of the topic
            topic = settings.topic(g[len(settings.namespace) :].partition(".")[2])
            tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
            committed = await admin.list_consumer_group_offsets(g, partitions=tps)
            end = await consumer.end_offsets(tps)
            done = {tp.partition: max(0, o.offset) for tp, o in committed.items()}
            lag[g] = sum(max(0, end[tp] - done.get(tp.partition, 0)) for tp in tps)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


def _wire(records: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """Decoded envelopes with distinct ids, and how many messages repeated an id."""
    seen: dict[str, dict[str, Any]] = {}
    dup = 0
    for r in records:
        try:
            env = json.loads(r.value)
        except ValueError:
            continue
        if env.get("id") in seen:
            dup += 1
        else:
            seen[env["id"]] = env
    return list(seen.values()), dup


async def gather(settings: Settings) -> dict[str, Any]:
    """Everything the checks look at, read once."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=20000
    )
    try:
        db = {
            s: client[settings.database(s)]
            for s in ("registry", "intake", "casework", "escalation", "repatriation")
        }
        data: dict[str, Any] = {
            "incidents": await db["intake"]["incidents"].find({}, {"_outbox": 0, "worker": 0}).to_list(),
            "cases": await db["casework"]["cases"].find({}, {"_outbox": 0}).to_list(),
            "chains": await db["escalation"]["chains"].find({}).to_list()
            + await db["escalation"]["chains_closed"].find({}).to_list(),
            "decided": await db["escalation"]["decided"].find({}, {"events": 0}).to_list(),
            "workflows": await db["repatriation"]["workflows"]
            .find({}, {"_outbox": 0, "timeline": 0})
            .to_list(),
            "evacuees": await db["repatriation"]["evacuees"].find({}).to_list(),
            "departures": await db["registry"]["departures"].find({}, {"_outbox": 0}).to_list(),
        }
    finally:
        await client.close()
    wire: dict[str, Any] = {}
    for t in (
        topics.INCIDENTS,
        topics.CASES,
        topics.ESCALATIONS,
        topics.REPATRIATION_REQUESTS,
        topics.REPATRIATIONS,
    ):
        wire[t.name] = _wire(await read_all(settings, t.name))
    dlq: list[tuple[str, dict[str, str], bytes]] = []
    for t in topics.CATALOG:
        for r in await read_all(settings, t.dlq):
            dlq.append((t.dlq, {k: v.decode(errors="replace") for k, v in (r.headers or ())}, r.value or b""))
    data["wire"] = wire
    data["lag"] = await consumer_lag(settings)
    data["dlq"] = dlq
    data["now"] = datetime.now(UTC)
    return data


def expected_incident_id(mission_id: str, key: str) -> str:
    return intake_domain.incident_id_for(None, f"{mission_id}|key|{key}")


def evaluate(exp: Expected, d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []

    # ---- intake: every accepted report is one incident, whatever the door and the retries
    wanted: dict[str, str] = {}  # incident id -> door
    problems: list[str] = []
    for c in exp.http_incidents:
        mission = c.key.split("|")[0]
        iid = expected_incident_id(mission, c.key)
        if c.final not in (200, 202):
            problems.append(f"HTTP report {c.key} ended {c.final}")
            continue
        wanted[iid] = "http"
        if set(c.resources) != {iid}:
            problems.append(f"HTTP report {c.key} answered {sorted(set(c.resources))}, expected {iid}")
    for s in exp.kafka_incidents:
        if s.sends:
            wanted[expected_incident_id(s.mission_id, s.key)] = "kafka"
        else:
            problems.append(f"Kafka report {s.key} never reached the broker")
    stored = {i["_id"] for i in d["incidents"]}
    missing = set(wanted) - stored
    extra = stored - set(wanted)
    problems += [f"incident {i} accepted but not stored" for i in sorted(missing)[:5]]
    problems += [f"incident {i} stored but never sent" for i in sorted(extra)[:5]]
    rows.append(
        Row(
            "every report accepted is one incident (HTTP and Kafka doors)",
            not problems and not missing and not extra,
            f"{len(wanted)} reports, {len(stored)} incidents "
            f"({sum(1 for v in wanted.values() if v == 'kafka')} via Kafka)",
            problems,
        )
    )

    # ---- casework: every incident in exactly one case; no case opened twice
    holders: dict[str, list[str]] = defaultdict(list)
    for case in d["cases"]:
        for iid in case.get("incident_ids") or []:
            holders[iid].append(case["_id"])
    problems = []
    for iid in wanted:
        n = len(holders.get(iid, []))
        if n != 1:
            problems.append(f"incident {iid} is in {n} cases")
    opened_entries = Counter(
        case["_id"] for case in d["cases"] for t in case.get("timeline", []) if t.get("kind") == "opened"
    )
    problems += [f"case {c} has {n} 'opened' entries" for c, n in opened_entries.items() if n != 1]
    case_envs, _ = d["wire"][topics.CASES.name]
    opened_ids: dict[str, set[str]] = defaultdict(set)
    for env in case_envs:
        if env["type"].endswith(".case.opened.v1"):
            opened_ids[env["data"]["case_id"]].add(env["id"])
    problems += [
        f"case {c} opened by {len(ids)} distinct events" for c, ids in opened_ids.items() if len(ids) > 1
    ]
    protection = [c for c in d["cases"] if c.get("kind") == "protection"]
    joined = sum(max(0, len(c.get("incident_ids") or []) - 1) for c in protection)
    rows.append(
        Row(
            "every incident in exactly one case; no case opened twice",
            not problems and len(wanted) > 0,
            f"{len(protection)} cases ({joined} incidents joined an open case), "
            f"{len(opened_ids)} CaseOpened ids",
            problems[:10],
        )
    )

    # ---- effects by event id: each consumed event leaves exactly one timeline entry
    entries_by_event: Counter[str] = Counter()
    for case in d["cases"]:
        for t in case.get("timeline", []):
            if t.get("event_id"):
                entries_by_event[t["event_id"]] += 1
    inc_envs, inc_dup = d["wire"][topics.INCIDENTS.name]
    problems = []
    for env in inc_envs:
        if env["type"].endswith("incident.accepted.v1") and entries_by_event[env["id"]] != 1:
            problems.append(
                f"IncidentAccepted {env['id']} ({env['data']['incident_id']}) has "
                f"{entries_by_event[env['id']]} timeline entries"
            )
    accepted_ids = [e for e in inc_envs if e["type"].endswith("incident.accepted.v1")]
    if len(accepted_ids) != len(wanted):
        problems.append(f"{len(accepted_ids)} IncidentAccepted events for {len(wanted)} incidents")
    rows.append(
        Row(
            "IncidentAccepted: one effect per event id",
            not problems,
            f"{len(accepted_ids)} events, {inc_dup} duplicate deliveries on the wire",
            problems[:10],
        )
    )
    esc_envs, esc_dup = d["wire"][topics.ESCALATIONS.name]
    problems = []
    applied = 0
    for env in esc_envs:
        data = env["data"]
        if not data.get("case_id") or data.get("kind") not in ("escalate", "notify", "tag", "refer"):
            continue
        n = entries_by_event[env["id"]]
        applied += 1
        if n != 1:
            problems.append(f"EscalationAction {env['id']} ({data['kind']}) has {n} timeline entries")
    rows.append(
        Row(
            "EscalationAction: one effect per event id",
            not problems,
            f"{applied} actions on cases, {esc_dup} duplicate deliveries on the wire",
            problems[:10],
        )
    )
    rep_envs, rep_dup = d["wire"][topics.REPATRIATIONS.name]
    problems = []
    counted = 0
    for env in rep_envs:
        if not env["data"].get("case_id"):
            continue
        counted += 1
        if entries_by_event[env["id"]] != 1:
            problems.append(f"{env['type']} {env['id']} has {entries_by_event[env['id']]} timeline entries")
    rows.append(
        Row(
            "repatriation events on case timelines: one effect per event id",
            not problems,
            f"{counted} events about cases, {rep_dup} duplicate deliveries on the wire",
            problems[:10],
        )
    )

    # ---- deadlines: every slot that fell due fired exactly once, and reached its case once
    decided = {x["_id"]: x for x in d["decided"]}
    now = d["now"]
    due = fired = 0
    problems = []
    for ch in d["chains"]:
        if ch.get("rule_id") not in CHAOS_RULES:
            continue
        started = ch["started_at"].astimezone(UTC)
        for sl in esc_chains.schedule(ch["stages"]):
            if started + timedelta(seconds=sl.offset) > now - timedelta(seconds=5):
                continue
            due += 1
            rec = decided.get(f"{ch['_id']}:{sl.label}")
            if rec is None:
                problems.append(f"chain {ch['_id']} slot {sl.label} fell due and did not fire")
                continue
            if rec.get("outcome") != "fired":
                continue  # cancelled: ended before it fell due
            fired += 1
            for aid in rec.get("action_ids") or []:
                if entries_by_event[aid] != 1:
                    problems.append(
                        f"firing {rec['_id']} action {aid} has {entries_by_event[aid]} timeline entries"
                    )
    chains_per_case = Counter((ch.get("rule_id"), ch.get("subject")) for ch in d["chains"])
    problems += [f"{k} has {n} chains" for k, n in chains_per_case.items() if n > 1]
    rows.append(
        Row(
            "every deadline that fell due fired exactly once",
            not problems and fired > 0,
            f"{due} deadlines fell due, {fired} fired (each once on its case)",
            problems[:10],
        )
    )

    # ---- remains: one repatriation per death
    problems = []
    death_cases = {c["_id"] for c in protection if c.get("category") == "death"}
    remains = Counter(w.get("case_id") for w in d["workflows"] if w.get("kind") == "remains")
    for c in death_cases:
        if remains.get(c, 0) != 1:
            problems.append(f"death case {c} has {remains.get(c, 0)} remains repatriations")
    problems += [f"remains repatriation for non-death case {c}" for c in remains if c not in death_cases]
    rows.append(
        Row(
            "every reported death has exactly one remains repatriation",
            not problems and len(death_cases) > 0,
            f"{len(death_cases)} deaths, {sum(remains.values())} remains repatriations",
            problems,
        )
    )

    # ---- trafficking: escalated to inter-agency and referred, once
    problems = []
    for iid in exp.trafficking_ids:
        cases = [c for c in d["cases"] if iid in (c.get("incident_ids") or [])]
        if len(cases) != 1:
            problems.append(f"trafficking incident {iid} in {len(cases)} cases")
            continue
        c = cases[0]
        refs = [t for t in c.get("timeline", []) if t.get("kind") == "referred"]
        if c.get("escalation_level") != 3 or len(refs) != 1:
            problems.append(
                f"trafficking case {c['_id']}: level {c.get('escalation_level')}, {len(refs)} referrals"
            )
    rows.append(
        Row(
            "the trafficking report is escalated to inter-agency and referred once",
            not problems and bool(exp.trafficking_ids),
            f"{len(exp.trafficking_ids)} trafficking report(s)",
            problems,
        )
    )

    # ---- registry and evacuation
    problems = []
    per_worker = Counter(dep.get("worker_id") for dep in d["departures"])
    problems += [f"worker {w} has {n} departures" for w, n in per_worker.items() if n > 1]
    if len(d["departures"]) != exp.departures_expected:
        problems.append(f"{len(d['departures'])} departures stored, {exp.departures_expected} sent")
    for c in exp.departure_calls + exp.import_calls:
        if c.final not in (200, 201, 409) or len(set(c.resources)) > 1:
            problems.append(f"{c.door} {c.key} ended {c.final} with {sorted(set(c.resources))}")
    rows.append(
        Row(
            "departures (CSV import and API): one per worker",
            not problems,
            f"{len(d['departures'])} departures, {len(exp.import_calls)} imports, "
            f"{len(exp.departure_calls)} by API",
            problems[:10],
        )
    )
    problems = []
    abroad = {
        dep["worker_id"]
        for dep in d["departures"]
        if dep.get("destination_country") == EVACUATION_COUNTRY
        and dep.get("status") in ("departed", "active_abroad")
    }
    evacs = [w for w in d["workflows"] if w.get("kind") == "evacuation"]
    if len(evacs) != 1:
        problems.append(f"{len(evacs)} evacuations stored, 1 started")
    listed = Counter((e["evacuation_id"], e["worker_id"]) for e in d["evacuees"])
    for ev in evacs:
        mine = {w for (eid, w) in listed if eid == ev["_id"]}
        if mine != abroad:
            problems.append(
                f"evacuation lists {len(mine)} workers, {len(abroad)} are registered abroad there "
                f"({len(abroad - mine)} missing, {len(mine - abroad)} extra)"
            )
        if (ev.get("fanout") or {}).get("status") != "done":
            problems.append(f"evacuation fan-out {ev.get('fanout', {}).get('status')}")
    if exp.evacuation is None or len(set(exp.evacuation.resources)) != 1:
        problems.append("the evacuation request did not converge on one evacuation")
    rows.append(
        Row(
            "the evacuation lists every worker registered there, once",
            not problems and len(abroad) >= exp.evacuees_expected,
            f"{len(abroad)} workers in {EVACUATION_COUNTRY}, {sum(1 for k in listed if True)} listed",
            problems,
        )
    )

    # ---- HTTP: only 503 with Retry-After, only while the database was away; retries converged
    problems = []
    n503 = retried = 0
    margin = 30.0  # seconds after the database answers again before every client saw it back
    for c in exp.all_calls:
        if len(c.attempts) > 1:
            retried += 1
        for a in c.attempts:
            if not isinstance(a.status, int) or a.status < 500:
                continue
            if a.status != 503:
                problems.append(f"{c.door} {c.key}: {a.status}")
                continue
            n503 += 1
            if not a.retry_after:
                problems.append(f"{c.door} {c.key}: 503 without Retry-After")
            if not any(s <= a.at <= e + margin for s, e in exp.db_outages):
                problems.append(f"{c.door} {c.key}: 503 while the database was up")
        if c.final is not None and isinstance(c.final, int) and c.final < 300 and len(set(c.resources)) > 1:
            problems.append(f"{c.door} {c.key} answered different resources {sorted(set(c.resources))}")
        if not isinstance(c.final, int):
            problems.append(f"{c.door} {c.key} never got an answer ({c.final})")
    statuses = Counter(a.status for c in exp.all_calls for a in c.attempts)
    rows.append(
        Row(
            "clients saw no 5xx but 503 + Retry-After while the database was away; retries converged",
            not problems,
            f"{len(exp.all_calls)} requests, {retried} retried, "
            f"answers {dict(sorted(statuses.items(), key=str))}",
            problems[:10],
        )
    )

    # ---- consumers: every group of every replica caught up (none stopped consuming)
    lag = d.get("lag", {})
    behind = {g: n for g, n in lag.items() if n != 0}
    rows.append(
        Row(
            "every consumer group caught up (no consumer stopped)",
            not behind and len(lag) > 0,
            f"{len(lag)} groups, {sum(max(0, n) for n in lag.values())} messages behind",
            [f"{g}: {n} behind" for g, n in behind.items()],
        )
    )

    # ---- dead letters: each for a reason the report names
    problems = []
    expected_kinds = Counter(kind for _, kind in exp.poison)
    seen_kinds = Counter(h.get("dlq-error-kind", "?") for _, h, _ in d["dlq"])
    for topic, h, _ in d["dlq"]:
        if topic != topics.INCIDENT_SUBMISSIONS.dlq or h.get("dlq-error-kind") not in expected_kinds:
            problems.append(f"{topic}: {h.get('dlq-error-kind')}: {h.get('dlq-error', '')[:200]}")
    if seen_kinds != expected_kinds:
        problems.append(f"dead letters {dict(seen_kinds)}, expected {dict(expected_kinds)}")
    rows.append(
        Row(
            "every dead letter is there for a reason named here",
            not problems,
            "; ".join(f"{h.get('dlq-error-kind')} ({h.get('dlq-error', '')[:60]})" for _, h, _ in d["dlq"])
            or "none",
            problems[:10],
        )
    )
    return rows


def duplicates_suppressed(exp: Expected, d: dict[str, Any]) -> dict[str, int]:
    """Repeats that reached a service and changed nothing."""
    http_repeats = sum(
        max(0, sum(1 for a in c.attempts if a.status in (200, 201, 202)) - 1) for c in exp.http_incidents
    )
    kafka_repeats = sum(max(0, s.sends - 1) for s in exp.kafka_incidents)
    wire = sum(dup for _, dup in d["wire"].values())
    return {"http": http_repeats, "kafka_door": kafka_repeats, "wire": wire}


def table(rows: list[Row]) -> str:
    out = ["| check | result | figures |", "|---|---|---|"]
    for r in rows:
        out.append(f"| {r.check} | {'PASS' if r.ok else 'FAIL'} | {r.figures} |")
        for p in r.problems:
            out.append(f"|  | | - {p} |")
    return "\n".join(out)


async def settle(
    exp: Expected, settings: Settings, timeout: float
) -> tuple[list[Row], dict[str, Any], float]:
    """Check until everything holds or time is up: (rows, data, seconds it took)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        try:
            # cheap first: while a consumer group is behind, reading everything would only slow it down
            lag = await consumer_lag(settings)
            behind = {g: n for g, n in lag.items() if n}
            if behind and loop.time() - start < timeout:
                print(f"[chaos] consumers behind: {behind}", flush=True)
                await asyncio.sleep(10)
                continue
            data = await gather(settings)
        except Exception as exc:  # a check that cannot read yet is not a verdict
            if loop.time() - start > timeout:
                raise
            print(f"[chaos] reading the results failed ({type(exc).__name__}: {exc}); again", flush=True)
            await asyncio.sleep(10)
            continue
        rows = evaluate(exp, data)
        if all(r.ok for r in rows) or loop.time() - start > timeout:
            return rows, data, loop.time() - start
        print(f"[chaos] not yet: {', '.join(r.check for r in rows if not r.ok)}", flush=True)
        await asyncio.sleep(15)
