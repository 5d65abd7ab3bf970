"""Rebuild a service's read models from topics: replay into fresh collections, then switch over.

A read model is collections a service derives only from events (its projection of another
service's data). `rebuild` reads the topic from the beginning to its end now (offsets E1),
applies every event through the service's own projector into fresh collections
(`<name>__rebuild`, same database, with the service's indexes), then switches: the live
collection is renamed aside, the fresh one takes its name, the old one is dropped. Events that
arrived meanwhile (after E1) are then applied to the live collections from E1 to the end.
Projectors keep the highest version of each document, so applying an event twice, or after
the live consumer did, changes nothing.

The switch is two renames (FerretDB has no `renameCollection` with `dropTarget`): between them
the collection is briefly absent; a live write that recreates it in that gap is moved aside
too and its event re-applied by the catch-up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.envelope import Envelope, Event, UnknownEventType
from shared.mongo import Doc
from shared.settings import Settings
from shared.topics import Topic

log = logging.getLogger("lindungi.replay")

FRESH = "__rebuild"
ASIDE = "__replaced"

Project = Callable[[AsyncDatabase[Doc], Event], Awaitable[Any]]
Indexes = Callable[[AsyncDatabase[Doc]], Awaitable[None]]


@dataclass(frozen=True)
class ReadModel:
    """Collections of one service derived only from one topic, and how an event lands in them."""

    service: str
    topic: Topic
    collections: tuple[str, ...]
    project: Project  # (db, event): idempotent, highest version wins
    indexes: Indexes  # the service's index creation (run on the fresh collections too)


class _Redirected:
    """A database whose read-model collections are the fresh ones: the service's own store code
    writes into them unchanged."""

    def __init__(self, db: AsyncDatabase[Doc], names: dict[str, str]) -> None:
        self._db = db
        self._names = names

    def __getitem__(self, name: str) -> Any:
        return self._db[self._names.get(name, name)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@dataclass
class Report:
    events: int = 0  # applied into the fresh collections
    caught_up: int = 0  # applied after the switch (arrived during the rebuild)
    skipped: int = 0  # not decodable or not this read model's type (the live consumer dead-letters those)
    documents: dict[str, int] | None = None


async def end_offsets(settings: Settings, topic: Topic) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        name = settings.topic(topic.name)
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
        ends = await consumer.end_offsets(parts) if parts else {}
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


async def _apply_range(
    settings: Settings,
    model: ReadModel,
    db: Any,
    start: dict[int, int] | None,
    end: dict[int, int],
    report: Report,
) -> int:
    """Apply the topic's events in [start, end) per partition (start None: the beginning)."""
    name = settings.topic(model.topic.name)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=settings.max_message_bytes * 2,
        max_partition_fetch_bytes=settings.max_message_bytes * 2,
    )
    await consumer.start()
    applied = 0
    try:
        parts = [TopicPartition(name, p) for p in sorted(end)]
        if not parts:
            return 0
        consumer.assign(parts)
        begins = await consumer.beginning_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(begins[tp], (start or {}).get(tp.partition, 0)))
        remaining = {tp for tp in parts if await consumer.position(tp) < end[tp.partition]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= end[tp.partition]:
                        continue
                    event = _event(r.value, model)
                    if event is None:
                        report.skipped += 1
                        continue
                    await model.project(cast(AsyncDatabase[Doc], db), event)
                    applied += 1
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp.partition]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return applied


def _event(value: bytes | None, model: ReadModel) -> Event | None:
    try:
        event = Envelope.model_validate_json(value or b"").payload()
    except (ValidationError, UnknownEventType):
        return None
    return event if type(event).topic == model.topic else None


async def _rename(db: AsyncDatabase[Doc], source: str, target: str) -> None:
    await db.client.admin.command("renameCollection", f"{db.name}.{source}", to=f"{db.name}.{target}")


async def _switch(db: AsyncDatabase[Doc], name: str) -> None:
    """The fresh collection takes the live one's name; the old one is dropped."""
    await db[name + ASIDE].drop()
    for _ in range(5):
        if name in await db.list_collection_names():
            await _rename(db, name, name + ASIDE)
        try:
            await _rename(db, name + FRESH, name)
            break
        except OperationFailure:
            # a live write recreated it between the renames: move that aside as well
            await db[name + ASIDE].drop()
    else:
        raise RuntimeError(f"could not switch {db.name}.{name}: it keeps being recreated")
    await db[name + ASIDE].drop()


async def rebuild(settings: Settings, db: AsyncDatabase[Doc], model: ReadModel) -> Report:
    """Replay the topic into fresh collections, switch them in, catch up; what was done."""
    report = Report()
    names = {c: c + FRESH for c in model.collections}
    for fresh in names.values():
        await db[fresh].drop()
    fresh_db = _Redirected(db, names)
    await model.indexes(cast(AsyncDatabase[Doc], fresh_db))
    first_end = await end_offsets(settings, model.topic)
    report.events = await _apply_range(settings, model, fresh_db, None, first_end, report)
    for c in model.collections:
        if c + FRESH not in await db.list_collection_names():
            await db.create_collection(c + FRESH)  # nothing to project: an empty read model
        await _switch(db, c)
    now_end = await end_offsets(settings, model.topic)
    report.caught_up = await _apply_range(settings, model, db, first_end, now_end, report)
    report.documents = {c: await db[c].count_documents({}) for c in model.collections}
    log.info("read model rebuilt", extra={"topic": model.topic.name})
    return report
