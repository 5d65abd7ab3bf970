"""Dead letters: read them with their reasons, and re-drive chosen ones to their origin, each once.

A re-drive is recorded in the operators' database (`lindungi_ops.dlq_replays`, keyed by the dead
letter's topic, partition and offset) before it is sent and marked done after: a second replay of
the same letter is refused, and one cut short is finished on the next run (at least once; every
consumer drops an event id it has applied).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from pymongo.errors import DuplicateKeyError

from shared.kafka import read_topics
from shared.logs import redact
from shared.mongo import connect
from shared.settings import Settings
from shared.topics import CATALOG, Topic

REPLAYS = "dlq_replays"


@dataclass
class DeadLetter:
    """One message in a dead-letter topic, with what the consumer said of it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def kind(self) -> str:
        return self.headers.get("dlq-error-kind", "?")

    @property
    def error(self) -> str:
        return self.headers.get("dlq-error", "")

    def preview(self, limit: int = 2000) -> str:
        """The body as text, identifiers masked, cut at `limit` characters."""
        text = self.value[:limit].decode("utf-8", errors="replace")
        more = f" … ({len(self.value)} bytes in all)" if len(self.value) > limit else ""
        return redact(text) + more


def topic_named(name: str) -> Topic:
    """A catalog topic by its name (with or without `.dlq`)."""
    bare = name.removesuffix(".dlq")
    for topic in CATALOG:
        if topic.name == bare:
            return topic
    known = ", ".join(t.name for t in CATALOG)
    raise KeyError(f"no topic {name!r} in the catalog; known: {known}")


def _headers(raw: Any) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in raw}


async def read(settings: Settings, topic: Topic) -> list[DeadLetter]:
    """Every dead letter of a topic so far, oldest first per partition."""
    out = [
        DeadLetter(
            record.partition,
            record.offset,
            record.key,
            record.value or b"",
            {k: v.decode(errors="replace") for k, v in record.headers},
        )
        for record in await read_topics(settings, [settings.topic(topic.dlq)])
    ]
    return sorted(out, key=lambda d: (d.partition, d.offset))


async def counts(settings: Settings) -> dict[str, int]:
    """Dead letters per catalog topic."""
    return {t.name: len(await read(settings, t)) for t in CATALOG}


@dataclass
class ReplayReport:
    replayed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


async def replay(settings: Settings, topic: Topic, refs: list[str] | None, *, operator: str) -> ReplayReport:
    """Send the chosen dead letters (all when refs is None) back to their origin topic, each once."""
    letters = {d.ref: d for d in await read(settings, topic)}
    chosen = list(letters) if refs is None else refs
    report = ReplayReport(missing=[r for r in chosen if r not in letters])
    client = connect(settings)
    ledger = client[settings.database("ops")][REPLAYS]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_request_size=settings.max_message_bytes + 64 * 1024,
    )
    await producer.start()
    try:
        for ref in chosen:
            letter = letters.get(ref)
            if letter is None:
                continue
            _id = f"{settings.topic(topic.dlq)}:{ref}"
            try:
                await ledger.insert_one({"_id": _id, "status": "replaying", "by": operator, "at": _now()})
            except DuplicateKeyError:
                done = await ledger.find_one({"_id": _id})
                if done and done.get("status") == "replayed":
                    report.already.append(ref)
                    continue  # a replay cut short is finished below
            origin = letter.headers.get("dlq-origin-topic") or settings.topic(topic.name)
            headers = [(k, v.encode()) for k, v in letter.headers.items() if not k.startswith("dlq-")]
            headers.append(("dlq-replayed-from", f"{settings.topic(topic.dlq)}:{ref}".encode()))
            await producer.send_and_wait(origin, letter.value, key=letter.key, headers=headers)
            await ledger.update_one({"_id": _id}, {"$set": {"status": "replayed", "replayed_at": _now()}})
            report.replayed.append(ref)
    finally:
        await producer.stop()
        await client.close()
    return report


def _now() -> datetime:
    return datetime.now(UTC)
