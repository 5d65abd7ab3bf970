"""Kafka plumbing written once: topics, at-least-once consumption, retries and dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import AckStatus
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

import shared.events  # noqa: F401  (registers every event type before decoding)
from shared.envelope import Envelope, Event, UnknownEventType
from shared.errors import PermanentError, describe
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import CATALOG, Topic

log = logging.getLogger("lindungi.kafka")

Handler = Callable[[Envelope, Any], Awaitable[None]]
# What many events do at once (a batch subscriber's): the events of the handled types, in the
# order consumed, each with its payload. It must leave what each event's own handler would, and
# be as idempotent; when it fails, the events are handled one at a time by their own handlers.
BatchHandler = Callable[[list[tuple[Envelope, Any]]], Awaitable[None]]
# A record decoded for handling: the record, its event, the payload, the event type's handler.
Item = tuple[ConsumerRecord[bytes, bytes], Envelope, Any, Handler]
# A test seam: called after a handler stored its effects and before the offset is committed.
AfterHandle = Callable[[Envelope], Awaitable[None]]

# Failures of the infrastructure, not of the message: the database is away. Retrying them counts
# no attempt (the message is not at fault and must not be dead-lettered); the wait grows to this.
TRANSIENT: tuple[type[BaseException], ...] = (ConnectionFailure,)
TRANSIENT_MAX_WAIT = 5.0


def make_broker(settings: Settings, *, client_id: str) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas and never duplicates on retry."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        max_request_size=settings.max_message_bytes + 64 * 1024,  # headers and batch overhead
        logger=logging.getLogger(f"lindungi.{client_id}.faststream"),
        log_level=logging.DEBUG,
        graceful_timeout=10.0,
    )


async def ensure_topics(settings: Settings, topics: tuple[Topic, ...] = CATALOG, timeout: float = 60) -> None:
    """Create every catalog topic and its dead-letter topic; existing ones are left alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=15000)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await admin.start()
            break
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap_servers} did not answer within {timeout:.0f}s: {exc}"
                ) from exc
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(n) for t in topics for n in (t.name, t.dlq)]
        new = [
            NewTopic(
                n,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs={"max.message.bytes": str(settings.max_message_bytes)},
            )
            for n in wanted
            if n not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another replica created them first
        # New topics' leaders take a moment; wait until metadata lists them all.
        for _ in range(100):
            if set(wanted) <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


class DeadLetters:
    """Sends a message that cannot be handled to `<topic>.dlq`, with the error and origin in headers."""

    def __init__(
        self, broker: KafkaBroker, settings: Settings, *, group: str, metrics: Metrics | None = None
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.group = group
        self.metrics = metrics
        self.sent = 0

    async def send(
        self, topic: Topic, raw: ConsumerRecord[bytes, bytes], *, kind: str, error: str, attempts: int
    ) -> None:
        headers = {k: v.decode(errors="replace") for k, v in (raw.headers or ())}
        headers.update(
            {
                "dlq-error-kind": kind,
                "dlq-error": error,
                "dlq-origin-topic": raw.topic,
                "dlq-origin-partition": str(raw.partition),
                "dlq-origin-offset": str(raw.offset),
                "dlq-consumer-group": self.group,
                "dlq-attempts": str(attempts),
                "dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        await self.broker.publish(
            raw.value or b"", topic=self.settings.topic(topic.dlq), key=raw.key, headers=headers
        )
        self.sent += 1
        if self.metrics is not None:
            self.metrics.dead_letters.labels(topic.name, kind).inc()
        log.warning(
            "message sent to dead-letter topic",
            extra={"topic": raw.topic, "error": f"{kind}: {error}"},
        )


class Commits(ConsumerRebalanceListener):  # type: ignore[misc]
    """The offsets of one consumer's handled messages, committed in groups.

    FastStream's acknowledgement commits after every message: a request to the group coordinator
    and a record in its offsets log per event, on the same cores as the handlers. Here a handled
    message's offset is noted, and the notes are committed every `every` seconds, or at once when
    `most` have gathered, when partitions are taken away (a rebalance), and at each message from
    `stopping` on. A note is exactly what was handled (the message's offset plus one, per
    partition; a subscriber handles one message, or one batch, at a time, so each partition's in
    order), so nothing is ever committed past a message not yet handled. A crash loses commits, never
    effects: what was handled since the last commit comes again, and handlers are idempotent.
    One consumer per subscriber (FastStream's default): `max_workers` above 1 would share this
    listener between consumers, and is not used.
    """

    def __init__(self, *, every: float, most: int) -> None:
        self.every = every
        self.most = most
        self._notes: dict[TopicPartition, int] = {}
        self._noted = 0
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one commit at a time: a revoke waits for the timer's
        self._at_once = False

    async def handled(self, msg: Any) -> None:
        """Note a message, or a batch's every record, whose effects are stored (or which is in the
        dead-letter topic)."""
        raw, consumer = msg.raw_message, getattr(msg, "consumer", None)
        if not hasattr(consumer, "assignment"):
            return  # not a group's consumer: FastStream's own acknowledgement commits
        msg.committed = AckStatus.ACKED  # what FastStream's acknowledgement would commit is noted here
        self._consumer = consumer
        for record in raw if isinstance(raw, tuple) else (raw,):
            # a batch holds each partition's records in order: the last one's offset stays noted
            self._notes[TopicPartition(record.topic, record.partition)] = record.offset + 1
            self._noted += 1
        if self._at_once or self._noted >= self.most:
            await self.flush()
        elif self._task is None:
            self._task = asyncio.create_task(self._every())

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.flush()

    async def flush(self) -> None:
        """Commit what is noted, for the partitions this consumer still holds."""
        async with self._lock:
            if not self._notes or self._consumer is None:
                return
            notes, self._notes, self._noted = self._notes, {}, 0
            held = self._consumer.assignment()
            offsets = {tp: offset for tp, offset in notes.items() if tp in held}
            if not offsets:
                return  # moved to another member, which starts at the last commit: handled again there
            try:
                await self._consumer.commit(offsets)
            except BaseException as exc:  # a rebalance under way (CommitFailedError), the broker away, a stop
                for tp, offset in offsets.items():
                    self._notes.setdefault(tp, offset)  # kept, unless a later message of tp was noted since
                if not isinstance(exc, Exception):
                    raise
                log.warning("offsets not committed; kept for the next commit", extra={"error": describe(exc)})

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.flush()  # before the group hands them to another member

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass

    async def stopping(self) -> None:
        """Commit what is noted, and every message handled from now on at once (a stop is coming)."""
        self._at_once = True
        if self._task is not None:
            self._task.cancel()  # a commit it was making keeps its notes (flush), committed below
            await asyncio.wait({self._task})
            self._task = None
        await self.flush()

    def resume(self) -> None:
        """Back to committing in groups, on the consumer the next start makes."""
        self._at_once = False
        self._consumer = None
        self._notes, self._noted = {}, 0


def subscribe(
    broker: KafkaBroker,
    settings: Settings,
    topic: Topic,
    *,
    group: str,
    handlers: Mapping[type[Event], Handler],
    batch: BatchHandler | None = None,
    concurrent: int = 1,
    after_handle: list[AfterHandle] | None = None,
    commits: Commits,
    metrics: Metrics | None = None,
) -> DeadLetters:
    """Consume a topic at least once: decode, validate, handle with bounded retries, else dead-letter.

    The offset is committed only after the handler returned (its effects are stored) or the
    message is safely in the dead-letter topic, by `commits` in groups (one per consumer: the
    services' Runtime makes them). If even the dead-letter topic fails, the message is not
    acknowledged and comes back. Event types this group does not handle are passed over.

    With `batch`, the consumer takes what the broker has fetched at once (up to
    `settings.batch_most` records; after a batch that was not full, the next one
    `settings.batch_linger_ms` later): each record is decoded and validated alone (a bad one goes
    to the dead-letter topic, the others on), then `batch` handles the valid ones together; if
    it fails, each is handled by its own handler, with the retries and dead letters above. Meant
    for read models, whose events many at a time cost a few round trips instead of a few each.

    With `concurrent` above 1 (and no `batch`), the fetched records are handled by their own
    handlers as above, the events of one key in order (what Kafka orders), up to `concurrent`
    keys at once: for handlers whose events of different keys may be handled side by side, as
    they are anyway by replicas holding different partitions. The batch is committed when all
    its events are handled.
    """
    dead = DeadLetters(broker, settings, group=settings.group(group), metrics=metrics)
    consumed = metrics.consumed.labels(topic.name) if metrics is not None else None
    failures = metrics.handler_failures.labels(topic.name) if metrics is not None else None
    by_type = {cls.type: h for cls, h in handlers.items()}
    hooks = after_handle if after_handle is not None else []
    options: dict[str, Any] = {
        "group_id": settings.group(group),
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
        "listener": commits,
    }

    async def decode(raw: ConsumerRecord[bytes, bytes]) -> tuple[Envelope, Any, Handler] | None:
        """The record's event and handler; None when it went to the dead-letter topic or this
        group passes its type over."""
        body = raw.value or b""
        if consumed is not None:
            consumed.inc()
        if not raw.key:
            # Keys keep one aggregate's events in order; an unkeyed message cannot be placed.
            error = f"no key: {topic.name} is keyed by {topic.key}"
            await dead.send(topic, raw, kind="no-key", error=error, attempts=0)
            return None
        if len(body) > settings.max_event_bytes:
            error = f"{len(body)} bytes, over the {settings.max_event_bytes} an event may have"
            await dead.send(topic, raw, kind="too-large", error=error, attempts=0)
            return None
        try:
            env = Envelope.model_validate_json(body)
            handler = by_type.get(env.type)
            payload = env.payload()
        except UnknownEventType as exc:
            await dead.send(topic, raw, kind="unknown-type", error=str(exc), attempts=0)
            return None
        except ValidationError as exc:
            kind = "undecodable" if any(e["type"] == "json_invalid" for e in exc.errors()) else "invalid"
            await dead.send(topic, raw, kind=kind, error=describe(exc), attempts=0)
            return None
        return None if handler is None else (env, payload, handler)

    async def wait_for_database(waits: int, exc: BaseException, **where: Any) -> None:
        # The database is unreachable: wait for it, holding this partition (nothing behind this
        # message could be stored either); handlers are idempotent, so a retry is safe.
        log.warning(
            "database unreachable; handler waits and retries", extra={**where, "error": describe(exc)}
        )
        await asyncio.sleep(min(settings.handler_backoff_seconds * 2**waits, TRANSIENT_MAX_WAIT))

    async def run(raw: ConsumerRecord[bytes, bytes], env: Envelope, payload: Any, handler: Handler) -> None:
        attempt = waits = 0
        while True:
            attempt += 1
            try:
                await handler(env, payload)
                break
            except PermanentError as exc:
                if failures is not None:
                    failures.inc()
                await dead.send(topic, raw, kind="rejected", error=describe(exc), attempts=attempt)
                return
            except TRANSIENT as exc:
                attempt -= 1
                waits += 1
                await wait_for_database(waits, exc, event_id=env.id, event_type=env.type)
            except Exception as exc:
                if failures is not None:
                    failures.inc()
                if attempt >= settings.handler_attempts:
                    log.exception("handler failed after %d attempts", attempt, extra={"event_id": env.id})
                    await dead.send(topic, raw, kind="handler-failed", error=describe(exc), attempts=attempt)
                    return
                log.warning(
                    "handler failed, retrying",
                    extra={"event_id": env.id, "event_type": env.type, "error": describe(exc)},
                )
                await asyncio.sleep(settings.handler_backoff_seconds * 2 ** (attempt - 1))
        for hook in hooks:
            await hook(env)

    async def run_batch(fn: BatchHandler, items: list[Item]) -> None:
        waits = 0
        while True:
            try:
                await fn([(env, payload) for _, env, payload, _ in items])
                break
            except TRANSIENT as exc:
                waits += 1
                await wait_for_database(waits, exc, events=len(items))
            except Exception as exc:
                if failures is not None:
                    failures.inc()
                log.warning(
                    "batch handler failed; its events are handled one at a time",
                    extra={"events": len(items), "error": describe(exc)},
                )
                for item in items:
                    await run(*item)
                return
        for _, env, _, _ in items:
            for hook in hooks:
                await hook(env)

    async def run_by_key(items: list[Item]) -> None:
        # one task a key, each running its key's events in order; at most `concurrent` at once
        by_key: dict[bytes, list[Item]] = {}
        for item in items:
            by_key.setdefault(item[0].key or b"", []).append(item)
        gate = asyncio.Semaphore(concurrent)

        async def in_order(events: list[Item]) -> None:
            async with gate:
                for item in events:
                    await run(*item)

        async with asyncio.TaskGroup() as tasks:
            for events in by_key.values():
                tasks.create_task(in_order(events))

    if batch is None and concurrent == 1:

        @broker.subscriber(settings.topic(topic.name), **options)
        async def consume(msg: KafkaMessage) -> None:
            # an exception: not acknowledged (FastStream seeks back), nothing noted
            item = await decode(msg.raw_message)
            if item is not None:
                await run(msg.raw_message, *item)
            await commits.handled(msg)

    else:

        @broker.subscriber(
            settings.topic(topic.name),
            batch=True,
            max_records=settings.batch_most,
            batch_timeout_ms=settings.batch_wait_ms,
            **options,
        )
        async def consume_batch(msg: KafkaMessage) -> None:
            # an exception: the batch is not acknowledged (FastStream seeks back), nothing noted
            items: list[Item] = []
            for raw in msg.raw_message:
                item = await decode(raw)
                if item is not None:
                    items.append((raw, *item))
            if items and batch is None:
                await run_by_key(items)
            elif items and batch is not None:
                await run_batch(batch, items)
            await commits.handled(msg)
            if batch is not None and len(msg.raw_message) < settings.batch_most:
                # what comes meanwhile is taken with the next batch: a read model a moment later,
                # in a few round trips for many events instead of a few for each (a full batch
                # says more is waiting: taken at once)
                await asyncio.sleep(settings.batch_linger_ms / 1000)

    return dead


async def consumer_lag(settings: Settings, consumed: list[tuple[Topic, str]]) -> dict[tuple[str, str], int]:
    """Messages each (consumer group, catalog topic) has yet to commit, summed over partitions.

    A group that never committed on a partition is behind by everything the partition holds
    (its consumers start at the earliest offset).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await admin.start()
    try:
        await consumer.start()
        try:
            names = {settings.topic(t.name) for t, _ in consumed}
            described = await admin.describe_topics(sorted(names))
            parts = {
                d["topic"]: [TopicPartition(d["topic"], p["partition"]) for p in d["partitions"]]
                for d in described
                if not d.get("error_code")
            }
            every = [tp for tps in parts.values() for tp in tps]
            ends = await consumer.end_offsets(every) if every else {}
            begins = await consumer.beginning_offsets(every) if every else {}
            out: dict[tuple[str, str], int] = {}
            for topic, group in consumed:
                committed = await admin.list_consumer_group_offsets(group)
                behind = 0
                for tp in parts.get(settings.topic(topic.name), []):
                    done = committed.get(tp)
                    start = done.offset if done is not None and done.offset >= 0 else begins[tp]
                    behind += max(ends[tp] - start, 0)
                out[(group, topic.name)] = behind
            return out
        finally:
            await consumer.stop()
    finally:
        await admin.close()


Offsets = dict[TopicPartition, int]


def _reader(settings: Settings) -> AIOKafkaConsumer:
    """A consumer outside any group that reads where it is told (messages up to the broker's limit)."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_bytes=settings.max_message_bytes * 2,
        max_partition_fetch_bytes=settings.max_message_bytes * 2,
    )


async def end_offsets(settings: Settings, names: Iterable[str]) -> Offsets:
    """The end now of every partition of the topics (full names, namespace included) that exist."""
    consumer = _reader(settings)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        return dict(await consumer.end_offsets(parts)) if parts else {}
    finally:
        await consumer.stop()


async def read_range(
    settings: Settings, end: Offsets, *, start: Offsets | None = None
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of each partition in [start, end) (start None or missing: the beginning kept).

    The one reader of a topic range (the DLQ CLI, replay, tests); `end` usually comes from
    end_offsets, so the range is what the topics held at that moment, and the reading ends.
    """
    parts = sorted(tp for tp, last in end.items() if last > 0)
    if not parts:
        return
    consumer = _reader(settings)
    await consumer.start()
    try:
        consumer.assign(parts)
        begins = await consumer.beginning_offsets(parts)
        for tp in parts:
            consumer.seek(tp, max(begins[tp], (start or {}).get(tp, 0)))
        remaining = {tp for tp in parts if await consumer.position(tp) < end[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < end[tp]:
                        yield r
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def read_topics(settings: Settings, names: Iterable[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the topics (full names) up to their end now, by partition and offset."""
    return [r async for r in read_range(settings, await end_offsets(settings, names))]
