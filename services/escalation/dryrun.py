"""Dry run of a candidate rule file over events stored in Kafka, against the live rules.

Reads CASES, INCIDENTS, DEPARTURES and REPATRIATIONS from the given offset (per partition) or
time up to their current end, replays them through both rule sets (simulate.py: nothing is
stored or sent) and reports what each would fire and the difference. Used by
`POST /v1/rules/dry-run` and by `lindungi rules dry-run FILE --from …` (deploy/cli/rules.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.escalation import ruleset, simulate
from shared.envelope import Envelope
from shared.settings import Settings


async def read_events(
    settings: Settings,
    *,
    from_offset: int | None = None,
    from_time: datetime | None = None,
    until: datetime | None = None,
) -> list[ruleset.Incoming]:
    """The stored events of the consumed topics, from an offset or a time, up to their end now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    out: list[ruleset.Incoming] = []
    try:
        parts: list[TopicPartition] = []
        for topic in ruleset.CONSUMED:
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


def _incoming(value: bytes | None) -> ruleset.Incoming | None:
    try:
        env = Envelope.model_validate_json(value or b"")
    except ValidationError:
        return None  # what the live consumer would dead-letter, the dry run passes over
    return ruleset.Incoming.of(id=env.id, type=env.type, time=env.time, data=env.data)


def report(
    candidate: ruleset.RuleSet,
    live: ruleset.RuleSet,
    events: list[ruleset.Incoming],
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
