"""Poison on every consumed topic: each lands in the topic's DLQ, once per consuming group, with
its error and its original bytes, and every consumer goes on to the end of its topic."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.casework.app import create_app as casework_app
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation.app import create_app as repatriation_app
from shared.clock import ManualClock
from shared.envelope import EVENT_TYPES
from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.support.harness import eventually, read_topic, running

pytestmark = pytest.mark.integration

BIG = 5 * 1024 * 1024


def poisons(topic_name: str) -> dict[str, tuple[bytes | None, bytes]]:
    """kind -> (key, value): one of each kind of poison for a topic."""
    a_type = next(cls.type for cls in EVENT_TYPES.values() if cls.topic.name == topic_name)
    envelope = {
        "specversion": "1.0",
        "id": "poison-1",
        "source": "misbehaving",
        "type": a_type,
        "subject": "x",
        "time": "2026-11-20T00:00:00Z",
        "data": {"nothing": "that fits"},
    }
    return {
        "undecodable": (b"k", b"\x00\xff{not json"),
        "invalid": (b"k", json.dumps(envelope).encode()),
        "unknown-type": (b"k", json.dumps({**envelope, "type": "lindungi.nobody.v9"}).encode()),
        "too-large": (b"k", b"{" + b" " * BIG + b"}"),
        "no-key": (None, json.dumps(envelope).encode()),
    }


async def caught_up(
    admin: AIOKafkaAdminClient, group: str, parts: list[TopicPartition], ends: dict[TopicPartition, int]
) -> bool:
    """The group has committed every partition up to its end (one that never held a message of
    this fresh topic has nothing to commit: consumers commit what they handled)."""
    committed = await admin.list_consumer_group_offsets(group, partitions=parts)
    return all(ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in parts)


async def test_every_consumed_topic_dead_letters_each_kind_of_poison_and_goes_on(settings: Settings) -> None:
    clock = ManualClock()
    apps = [
        f(settings, clock) for f in (registry_app, intake_app, casework_app, escalation_app, repatriation_app)
    ]
    groups: dict[str, set[str]] = defaultdict(set)  # topic name -> consuming groups
    for app in apps:
        for topic, group in app.state.runtime.consumed:
            groups[topic.name].add(group)
    assert len(groups) >= 7, groups
    await ensure_topics(settings)
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(running(app))
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=BIG + 1024 * 1024
        )
        await producer.start()
        try:
            for name in groups:
                for key, value in poisons(name).values():
                    await producer.send_and_wait(settings.topic(name), value, key=key)
        finally:
            await producer.stop()

        for name, consuming in groups.items():
            expected = len(consuming) * 5
            dead = await read_topic(settings, f"{name}.dlq", min_count=expected, timeout=90)
            by_group: dict[str, dict[str, Any]] = defaultdict(dict)
            for r in dead:
                h = {k: v.decode() for k, v in r.headers}
                by_group[h["dlq-consumer-group"]][h["dlq-error-kind"]] = (r.value, h["dlq-error"])
            assert set(by_group) == consuming, name
            for group, kinds in by_group.items():
                assert set(kinds) == set(poisons(name)), (name, group, sorted(kinds))
                for kind, (value, error) in kinds.items():
                    assert value == poisons(name)[kind][1], f"{name} {kind}: original bytes kept"
                    assert error, f"{name} {kind}: the error is named"

        # Every group went past the poison: its committed offset is the end of its topic.
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await probe.start()
        try:
            for name, consuming in groups.items():
                parts = [TopicPartition(settings.topic(name), p) for p in range(settings.topic_partitions)]
                ends = await probe.end_offsets(parts)
                for group in consuming:
                    await eventually(lambda g=group, p=parts, e=ends: caught_up(admin, g, p, e), timeout=60)
        finally:
            await probe.stop()
            await admin.close()
