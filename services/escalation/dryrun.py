"""Dry run of a candidate rule file over events stored in Kafka, against the live rules.

    python -m services.escalation.dryrun --rules FILE (--from-offset N | --from-time ISO)
        [--until ISO] [--live FILE]

Reads CASES, INCIDENTS, DEPARTURES and REPATRIATIONS from the given offset (per partition) or
time up to their current end, replays them through both rule sets (simulate.py: nothing is
stored or sent) and prints what each would fire and the difference, as JSON. The live rules
are the rule set in force in escalation's database, unless --live names a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.escalation import domain, simulate, store
from shared.envelope import Envelope
from shared.mongo import connect
from shared.settings import Settings


async def read_events(
    settings: Settings,
    *,
    from_offset: int | None = None,
    from_time: datetime | None = None,
    until: datetime | None = None,
) -> list[domain.Incoming]:
    """The stored events of the consumed topics, from an offset or a time, up to their end now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    out: list[domain.Incoming] = []
    try:
        parts: list[TopicPartition] = []
        for topic in domain.CONSUMED:
            name = settings.topic(topic.name)
            for p in consumer.partitions_for_topic(name) or await _partitions(consumer, name):
                parts.append(TopicPartition(name, p))
        if not parts:
            return out
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts: dict[TopicPartition, int] = {}
        if from_time is not None:
            found = await consumer.offsets_for_times({tp: int(from_time.timestamp() * 1000) for tp in parts})
            for tp in parts:
                starts[tp] = found[tp].offset if found.get(tp) else ends[tp]
        else:
            begins = await consumer.beginning_offsets(parts)
            for tp in parts:
                starts[tp] = max(begins[tp], from_offset or 0)
        for tp in parts:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in parts if starts[tp] < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    ev = _incoming(r.value)
                    if ev is not None and (until is None or ev.time <= until):
                        out.append(ev)
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda e: e.time)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    try:
        await consumer._client.force_metadata_update()
    except Exception:
        return set()
    return consumer.partitions_for_topic(topic) or set()


def _incoming(value: bytes | None) -> domain.Incoming | None:
    try:
        env = Envelope.model_validate_json(value or b"")
    except ValidationError:
        return None  # what the live consumer would dead-letter, the dry run passes over
    return domain.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)


def report(
    candidate: domain.RuleSet,
    live: domain.RuleSet,
    events: list[domain.Incoming],
    *,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Both rule sets over the same events, and the difference."""
    diff = simulate.compare(simulate.run(candidate, events, until), simulate.run(live, events, until))
    return {
        "events": len(events),
        "first_event_at": events[0].time.isoformat() if events else None,
        "last_event_at": events[-1].time.isoformat() if events else None,
        **diff,
    }


async def _live_rules(settings: Settings) -> domain.RuleSet:
    client = connect(settings)
    try:
        doc = await store.latest_ruleset(client[settings.database("escalation")])
    finally:
        await client.close()
    if doc is None:
        raise SystemExit("no rule set stored in escalation's database; give --live FILE")
    return domain.load_rules(doc["yaml"])


async def main(argv: list[str] | None = None) -> int:
    """The CLI: print the dry-run report as JSON; exit 2 on an invalid rule file."""
    ap = argparse.ArgumentParser(prog="python -m services.escalation.dryrun", description=__doc__)
    ap.add_argument("--rules", required=True, type=Path, help="candidate rule file (YAML)")
    ap.add_argument("--live", type=Path, help="compare with this file instead of the rules in force")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--from-offset", type=int, help="offset to start from, in every partition")
    where.add_argument("--from-time", type=datetime.fromisoformat, help="ISO time to start from")
    ap.add_argument("--until", type=datetime.fromisoformat, help="simulate up to this time")
    args = ap.parse_args(argv)
    settings = Settings()
    try:
        candidate = domain.load_rules(args.rules.read_text())
        live = domain.load_rules(args.live.read_text()) if args.live else await _live_rules(settings)
    except domain.InvalidRules as exc:
        print(json.dumps({"invalid": [e.__dict__ for e in exc.errors]}, indent=2))
        return 2
    events = await read_events(
        settings, from_offset=args.from_offset, from_time=args.from_time, until=args.until
    )
    print(json.dumps(report(candidate, live, events, until=args.until), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
