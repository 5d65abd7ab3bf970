"""Delivery guarantees on the real broker and database: redelivery without duplicates,
dead letters that do not stop the consumer, and an outbox that survives a crash."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.casework.app import create_app as casework_app
from shared import topics
from shared.clock import SystemClock
from shared.envelope import Envelope
from shared.events.casework import CaseOpened
from shared.events.intake import IncidentAccepted
from shared.kafka import consumer_lag
from shared.mongo import connect
from shared.outbox import Outbox, OutboxRelay
from shared.service import Runtime
from shared.settings import Settings
from tests.support.escalation import case_opened
from tests.support.harness import ROOT, envelopes, eventually, produce, read_topic, running

pytestmark = pytest.mark.integration


def incident_envelope(**over: object) -> Envelope:
    event = IncidentAccepted(
        incident_id=uuid.uuid4().hex,
        mission_id="kbri-seoul",
        country="KR",
        category="unpaid_wages",
        severity="high",
        occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
        reported_at=datetime(2026, 11, 21, tzinfo=UTC),
        worker_key=uuid.uuid4().hex,
        **over,  # type: ignore[arg-type]
    )
    return Envelope.wrap(event, source="tests", subject=event.incident_id, clock=SystemClock())


async def cases_for(settings: Settings, incident_id: str) -> list[dict[str, object]]:
    client = connect(settings)
    try:
        db = client[settings.database("casework")]
        return await db["cases"].find({"incident_ids": incident_id}).to_list()
    finally:
        await client.close()


async def test_crash_after_store_before_commit_is_redelivered_without_duplicate(settings: Settings) -> None:
    env = incident_envelope()
    incident_id = env.data["incident_id"]
    await produce(settings, topics.INCIDENTS.name, env.model_dump_json().encode(), key=b"w")

    child_env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
    }
    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.support.crash", "casework"],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == 137, crashed.stderr.decode()[-2000:]
    stored = await cases_for(settings, incident_id)
    assert len(stored) == 1, "the crashed handler had stored its effects"

    app = casework_app(settings)
    handled: list[str] = []

    async def seen(e: Envelope) -> None:
        handled.append(e.id)

    app.state.runtime.after_handle.append(seen)
    async with running(app):
        await eventually(lambda: asyncio.sleep(0, result=env.id in handled), timeout=30)
        opened = await read_topic(settings, topics.CASES.name, min_count=1, timeout=15)

    after = await cases_for(settings, incident_id)
    assert len(after) == 1
    assert [t["kind"] for t in after[0]["timeline"]] == ["opened"]
    opened_ids = {e["id"] for e in envelopes(opened) if e["type"] == CaseOpened.type}
    assert len(opened_ids) == 1, "one CaseOpened, published by the outbox of the first attempt"


async def test_offsets_are_committed_in_groups_and_what_is_left_by_the_stop(settings: Settings) -> None:
    """25 incidents, offsets committed 10 at a time (no timer within the test): 20 committed while
    running, the last 5 by the stop; a start after it handles none of them again (one later
    incident on each partition shows where it began)."""
    # placement one report at a time: a message a note (a batch is noted whole, committed at once)
    grouped = settings.model_copy(
        update={"commit_every_seconds": 3600.0, "commit_most": 10, "key_concurrency": 1}
    )
    sent = [incident_envelope() for _ in range(25)]
    for env in sent:
        await produce(
            grouped, topics.INCIDENTS.name, env.model_dump_json().encode(), key=env.subject.encode()
        )
    app = casework_app(grouped)
    rt = app.state.runtime
    handled: list[str] = []

    async def seen(e: Envelope) -> None:
        if e.type == IncidentAccepted.type:
            handled.append(e.id)

    rt.after_handle.append(seen)
    incidents = [(t, g) for t, g in rt.consumed if t == topics.INCIDENTS]
    async with running(app):
        await eventually(lambda: asyncio.sleep(0, result=len(handled) == 25), timeout=60)
        behind = await consumer_lag(grouped, incidents)
        assert list(behind.values()) == [5], "two groups of 10 committed, the last 5 only noted"
    assert list((await consumer_lag(grouped, incidents)).values()) == [0], "the stop committed them"

    # then one more incident on each partition: anything left uncommitted there comes before it
    later = [incident_envelope() for _ in range(grouped.topic_partitions)]
    for partition, env in enumerate(later):
        body = env.model_dump_json().encode()
        await produce(grouped, topics.INCIDENTS.name, body, key=env.subject.encode(), partition=partition)
    again = casework_app(grouped)
    again.state.runtime.after_handle.append(seen)
    async with running(again):
        await eventually(lambda: asyncio.sleep(0, result=len(handled) >= 25 + len(later)), timeout=60)
    assert sorted(handled) == sorted(e.id for e in sent + later), "each handled once"


async def test_poison_messages_go_to_dlq_and_the_next_message_is_processed(settings: Settings) -> None:
    good = incident_envelope()
    invalid = incident_envelope().model_dump(mode="json")
    invalid["data"]["severity"] = "apocalyptic"
    unknown = {**incident_envelope().model_dump(mode="json"), "type": "lindungi.nobody.v9"}
    async with running(casework_app(settings)):
        await produce(settings, topics.INCIDENTS.name, b"\x00\xffnot json at all", key=b"w")
        await produce(settings, topics.INCIDENTS.name, json.dumps(invalid).encode(), key=b"w")
        await produce(settings, topics.INCIDENTS.name, json.dumps(unknown).encode(), key=b"w")
        await produce(settings, topics.INCIDENTS.name, good.model_dump_json().encode(), key=b"w")
        await eventually(lambda: cases_for(settings, good.data["incident_id"]))
        dead = await read_topic(settings, topics.INCIDENTS.dlq, min_count=3)

    assert len(dead) == 3
    kinds = [dict(r.headers)["dlq-error-kind"].decode() for r in dead]
    assert kinds == ["undecodable", "invalid", "unknown-type"]
    invalid_headers = dict(dead[1].headers)
    assert b"severity" in invalid_headers["dlq-error"]
    assert b"apocalyptic" not in invalid_headers["dlq-error"], "errors never echo the input"
    assert invalid_headers["dlq-origin-topic"].decode() == settings.topic(topics.INCIDENTS.name)
    assert dead[0].value == b"\x00\xffnot json at all", "the original bytes are kept for replay"


async def test_handler_failing_past_retries_is_dead_lettered(settings: Settings) -> None:
    failing, good = incident_envelope(), incident_envelope()
    attempts: list[str] = []
    done: list[str] = []

    async def handler(env: Envelope, incident: IncidentAccepted) -> None:
        if env.id == failing.id:
            attempts.append(env.id)
            raise ConnectionError("database went away")
        done.append(env.id)

    rt = Runtime("dlqtest", settings=settings)
    rt.consume(topics.INCIDENTS, {IncidentAccepted: handler})
    await rt.start()
    try:
        await produce(settings, topics.INCIDENTS.name, failing.model_dump_json().encode(), key=b"w")
        await produce(settings, topics.INCIDENTS.name, good.model_dump_json().encode(), key=b"w")
        await eventually(lambda: asyncio.sleep(0, result=good.id in done))
        dead = await read_topic(settings, topics.INCIDENTS.dlq, min_count=1)
    finally:
        await rt.stop()
    assert len(attempts) == settings.handler_attempts
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dlq-error-kind"] == b"handler-failed"
    assert headers["dlq-attempts"] == str(settings.handler_attempts).encode()
    assert b"database went away" in headers["dlq-error"]


async def test_a_batch_consumer_dead_letters_a_bad_record_and_falls_back_to_one_at_a_time(
    settings: Settings,
) -> None:
    """A consumer with a batch handler takes the records the broker fetched together: an invalid
    one goes to the dead-letter topic alone; a batch whose handler fails is handled again one
    event at a time, so only the event at fault is dead-lettered; every offset is committed."""
    goods = [incident_envelope() for _ in range(5)]
    poison = incident_envelope()
    invalid = incident_envelope().model_dump(mode="json")
    invalid["data"]["severity"] = "apocalyptic"
    batches: list[list[str]] = []
    one_by_one: list[str] = []

    async def handler(env: Envelope, incident: IncidentAccepted) -> None:
        if env.id == poison.id:
            raise RuntimeError("this one cannot be handled")
        one_by_one.append(env.id)

    async def batch(events: list[tuple[Envelope, Any]]) -> None:
        ids = [env.id for env, _ in events]
        assert all(isinstance(incident, IncidentAccepted) for _, incident in events)
        if poison.id in ids:
            raise RuntimeError("one of these cannot be handled")
        batches.append(ids)

    for body in [json.dumps(invalid).encode(), *(e.model_dump_json().encode() for e in [*goods[:2], poison])]:
        await produce(settings, topics.INCIDENTS.name, body, key=b"w")
    rt = Runtime("batchtest", settings=settings)
    rt.consume(topics.INCIDENTS, {IncidentAccepted: handler}, batch=batch)
    consumed = list(rt.consumed)
    await rt.start()
    try:
        await eventually(lambda: asyncio.sleep(0, result=len(one_by_one) == 2), timeout=60)
        for env in goods[2:]:
            await produce(settings, topics.INCIDENTS.name, env.model_dump_json().encode(), key=b"w")
        handled = lambda: sorted(one_by_one + [i for b in batches for i in b])  # noqa: E731
        await eventually(
            lambda: asyncio.sleep(0, result=handled() == sorted(e.id for e in goods)), timeout=60
        )
        dead = await read_topic(settings, topics.INCIDENTS.dlq, min_count=2)
    finally:
        await rt.stop()
    # the first fetch held all four records: the invalid one left out, the batch of three failed,
    # then each of the three alone: two handled, the poison one dead-lettered after its attempts
    assert sorted(one_by_one) == sorted(e.id for e in goods[:2])
    assert sorted(i for b in batches for i in b) == sorted(e.id for e in goods[2:])
    kinds = [dict(r.headers)["dlq-error-kind"].decode() for r in dead]
    assert kinds == ["invalid", "handler-failed"]
    assert json.loads(dead[1].value)["id"] == poison.id
    assert list((await consumer_lag(settings, consumed)).values()) == [0], "every offset committed"


async def test_a_concurrent_consumer_handles_keys_side_by_side_and_each_keys_events_in_order(
    settings: Settings,
) -> None:
    """`concurrent`: the events of different keys are handled side by side (never more than the
    limit at once), those of one key one after another in the order of the topic."""
    keys = [f"worker-{k}" for k in range(4)]
    sent = {key: [incident_envelope() for _ in range(4)] for key in keys}
    order: dict[str, list[str]] = {key: [] for key in keys}
    busy: list[str] = []
    most = 0

    async def handler(env: Envelope, incident: IncidentAccepted) -> None:
        nonlocal most
        key = next(k for k, envs in sent.items() if env in envs)
        assert key not in busy, "two events of one key at once"
        busy.append(key)
        most = max(most, len(busy))
        await asyncio.sleep(0.05)
        busy.remove(key)
        order[key].append(env.id)

    for i in range(4):
        for key in keys:
            env = sent[key][i]
            await produce(settings, topics.INCIDENTS.name, env.model_dump_json().encode(), key=key.encode())
    rt = Runtime("concurrenttest", settings=settings)
    rt.consume(topics.INCIDENTS, {IncidentAccepted: handler}, concurrent=3)
    await rt.start()
    try:
        await eventually(lambda: asyncio.sleep(0, result=sum(map(len, order.values())) == 16), timeout=60)
    finally:
        await rt.stop()
    assert order == {key: [e.id for e in envs] for key, envs in sent.items()}
    assert 1 < most <= 3


async def test_database_away_is_waited_out_not_dead_lettered(settings: Settings) -> None:
    """A handler that cannot reach the database (more times than handler_attempts) is retried
    until it can: the message is not at fault and must not land in the dead-letter topic."""
    env = incident_envelope()
    failures = settings.handler_attempts + 2
    attempts: list[str] = []
    done: list[str] = []

    async def handler(e: Envelope, incident: IncidentAccepted) -> None:
        attempts.append(e.id)
        if len(attempts) <= failures:
            raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused")
        done.append(e.id)

    rt = Runtime("dbaway", settings=settings)
    rt.consume(topics.INCIDENTS, {IncidentAccepted: handler})
    await rt.start()
    try:
        await produce(settings, topics.INCIDENTS.name, env.model_dump_json().encode(), key=b"w")
        await eventually(lambda: asyncio.sleep(0, result=env.id in done), timeout=60)
        dead = await read_topic(settings, topics.INCIDENTS.dlq, timeout=2)
    finally:
        await rt.stop()
    assert len(attempts) == failures + 1
    assert dead == [], "a database outage is not the message's fault"


OUTBOX_WRITER = """
import asyncio, os, sys
from datetime import UTC, datetime
from shared.clock import SystemClock
from shared.events.casework import CaseOpened
from shared.mongo import connect
from shared.outbox import Outbox
from shared.settings import Settings

async def main():
    s = Settings()
    db = connect(s)[s.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    for i in range(int(sys.argv[1])):
        ev = CaseOpened(case_id=f"c{i}", incident_id=f"i{i}", worker_key="w", mission_id="kbri-seoul",
                        country="KR", category="illness", severity="low", priority=0,
                        opened_at=datetime.now(UTC))
        await db["things"].insert_one(box.on_insert({"_id": f"c{i}"}, [box.entry(ev, key=f"c{i}")]))
    os._exit(137)  # crash before any relay ran

asyncio.run(main())
"""


async def test_outbox_events_written_before_a_crash_are_published_after_restart(settings: Settings) -> None:
    child_env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
    }
    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", OUTBOX_WRITER, "5"],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == 137, crashed.stderr.decode()[-2000:]
    assert await read_topic(settings, topics.CASES.name, timeout=2) == []

    rt = Runtime("outboxtest", settings=settings, outbox_collections=["things"])
    await rt.start()
    try:
        published = await read_topic(settings, topics.CASES.name, min_count=5)

        async def cleared() -> bool:
            return await rt.db["things"].count_documents({"_outbox_pending": True}) == 0

        await eventually(cleared)
    finally:
        await rt.stop()
    assert sorted(e["data"]["case_id"] for e in envelopes(published)) == [f"c{i}" for i in range(5)]


async def test_two_relays_publish_each_event_once(settings: Settings) -> None:
    """Replicas share the outbox: leases keep them from publishing the same document twice."""
    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    from shared.kafka import ensure_topics, make_broker

    await ensure_topics(settings)
    docs = []
    for i in range(200):
        ev = case_opened(f"c{i}", incident_id=f"i{i}")
        docs.append(box.on_insert({"_id": f"c{i}"}, [box.entry(ev, key=f"c{i}")]))
    await db["things"].insert_many(docs)
    brokers = [make_broker(settings, client_id=f"relay{i}") for i in range(2)]
    for b in brokers:
        await b.start()

    def relay(b):  # type: ignore[no-untyped-def]
        async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
            await b.publish(body, topic=settings.topic(topic), key=key, headers=headers)

        return OutboxRelay(db=db, collections=["things"], publish=publish, owner=str(id(b)))

    try:
        relays = [relay(b) for b in brokers]
        counts = await asyncio.gather(*(r.drain() for r in relays))
    finally:
        for b in brokers:
            await b.stop()
        await client.close()
    published = await read_topic(settings, topics.CASES.name, min_count=200)
    ids = [e["id"] for e in envelopes(published)]
    assert sum(counts) == 200 and len(ids) == 200 and len(set(ids)) == 200
    assert all(c > 0 for c in counts), f"both replicas took part: {counts}"


async def test_a_publish_failing_midway_does_not_send_the_earlier_entries_again(settings: Settings) -> None:
    """A broker error on the second of three entries: the retry sends the second and third only.

    (The relay's seam is its publish function: here the real broker, failing once on purpose.)
    """
    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    from shared.kafka import ensure_topics, make_broker

    await ensure_topics(settings)
    events = [case_opened("c1", incident_id=f"i{i}") for i in range(3)]
    await db["things"].insert_one(box.on_insert({"_id": "c1"}, [box.entry(e, key="c1") for e in events]))
    broker = make_broker(settings, client_id="relay-fails-once")
    await broker.start()
    calls = 0

    async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("broker went away")
        await broker.publish(body, topic=settings.topic(topic), key=key, headers=headers)

    relay = OutboxRelay(db=db, collections=["things"], publish=publish, owner="r")
    try:
        with pytest.raises(ConnectionError):
            await relay.drain()
        left = await db["things"].find_one({"_id": "c1"})
        assert [e["envelope"]["data"]["incident_id"] for e in left["_outbox"]] == ["i1", "i2"]
        assert left["_outbox_pending"] is True
        assert await relay.drain() == 2
    finally:
        await broker.stop()
        await client.close()
    published = envelopes(await read_topic(settings, topics.CASES.name, min_count=3))
    assert [e["data"]["incident_id"] for e in published] == ["i0", "i1", "i2"]


async def test_a_relay_stopped_while_claiming_leaves_no_lease_and_the_next_publishes_at_once(
    settings: Settings,
) -> None:
    """Stopped between its lease insert taking effect and the answer coming back (a cancel lands
    there), a relay still deletes the lease on its way out: the next replica publishes at once
    instead of waiting for the lease to expire (ci: a restart's events came 30 s late)."""
    from shared.outbox import LEASES
    from shared.service import stop_tasks

    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    ev = case_opened("c1", incident_id="i1")
    await db["things"].insert_one(box.on_insert({"_id": "c1"}, [box.entry(ev, key="c1")]))
    sent: list[bytes] = []

    async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        sent.append(body)

    claimed = asyncio.Event()

    class Slow(OutboxRelay):
        async def _lease_many(self, name: str, ids: list[Any]) -> list[Any]:
            got = await super()._lease_many(name, ids)
            claimed.set()
            await asyncio.Event().wait()  # the answer never comes back before the stop
            return got

    first = Slow(db=db, collections=["things"], publish=publish, owner="first", lease_seconds=600)
    try:
        task = asyncio.create_task(first.run())
        await asyncio.wait_for(claimed.wait(), 10)
        assert await db[LEASES].count_documents({"owner": "first"}) == 1
        first.stop()
        await stop_tasks([task], grace=1)
        assert await db[LEASES].count_documents({}) == 0
        second = OutboxRelay(
            db=db, collections=["things"], publish=publish, owner="second", lease_seconds=600
        )
        assert await second.drain() == 1 and len(sent) == 1
    finally:
        await client.close()


async def test_a_batch_with_one_document_failing_clears_the_others_and_keeps_its_unsent_pending(
    settings: Settings,
) -> None:
    """Documents are published side by side: one failing on its second entry keeps that entry and
    the next, still pending (the sweep finds it), while the others are cleared; the retry sends
    only what was not sent."""
    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    await db["things"].insert_many(
        [
            box.on_insert(
                {"_id": doc},
                [box.entry(case_opened(doc, incident_id=f"{doc}-{i}"), key=doc) for i in range(n)],
            )
            for doc, n in (("a", 3), ("b", 1), ("c", 2))
        ]
    )
    sent: list[str] = []
    failed = False

    async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        nonlocal failed
        incident_id = json.loads(body)["data"]["incident_id"]
        if incident_id == "a-1" and not failed:
            failed = True
            raise ConnectionError("broker went away")
        sent.append(incident_id)

    relay = OutboxRelay(db=db, collections=["things"], publish=publish, owner="r")
    try:
        with pytest.raises(ConnectionError):
            await relay.drain()
        left = {d["_id"]: d async for d in db["things"].find({})}
        assert [e["envelope"]["data"]["incident_id"] for e in left["a"]["_outbox"]] == ["a-1", "a-2"]
        assert left["a"]["_outbox_pending"] is True
        for done in ("b", "c"):
            assert left[done]["_outbox"] == [] and left[done]["_outbox_pending"] is False
        assert await relay.drain() == 2
        assert sorted(sent) == ["a-0", "a-1", "a-2", "b-0", "c-0", "c-1"]
        assert [i for i in sent if i.startswith("a")] == ["a-0", "a-1", "a-2"]  # its own order kept
    finally:
        await client.close()


async def test_leases_of_a_dead_relay_are_taken_over_and_a_live_ones_respected(settings: Settings) -> None:
    """Three documents leased by a relay that died (expired) and one by a live relay: all three
    are published at once, the fourth waits for its holder, and no lease of ours is left."""
    from shared.outbox import LEASES

    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    docs = ["d1", "d2", "d3", "d4"]
    await db["things"].insert_many(
        [box.on_insert({"_id": doc}, [box.entry(case_opened(doc, incident_id=doc), key=doc)]) for doc in docs]
    )
    now = datetime.now(UTC).timestamp()
    await db[LEASES].insert_many(
        [{"_id": f"things:{doc}", "owner": "dead", "until": now - 60} for doc in docs[:3]]
        + [{"_id": "things:d4", "owner": "alive", "until": now + 600}]
    )
    sent: list[str] = []

    async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        sent.append(json.loads(body)["data"]["incident_id"])

    relay = OutboxRelay(db=db, collections=["things"], publish=publish, owner="r")
    try:
        assert await relay.drain() == 3
        assert sorted(sent) == ["d1", "d2", "d3"]
        assert [d["_id"] async for d in db[LEASES].find({})] == ["things:d4"]
        assert (await db["things"].find_one({"_id": "d4"}))["_outbox_pending"] is True
        assert not relay._held
    finally:
        await client.close()


async def test_a_wake_naming_a_collection_publishes_the_document_there_only(settings: Settings) -> None:
    """A relay of two collections (escalation's emissions and deliveries): a document named with
    its collection is looked for there alone, one named without is looked for in both."""
    client = connect(settings)
    db = client[settings.database("outboxtest")]
    box = Outbox(source="lindungi/casework", clock=SystemClock())
    for name in ("things", "others"):
        await db[name].insert_one(
            box.on_insert({"_id": "x"}, [box.entry(case_opened(name, incident_id=name), key="x")])
        )
    sent: list[str] = []

    async def publish(topic: str, key: bytes, body: bytes, headers: dict[str, str]) -> None:
        sent.append(json.loads(body)["data"]["incident_id"])

    relay = OutboxRelay(db=db, collections=["things", "others"], publish=publish, owner="r")
    try:
        relay.wake("x", collection="things")
        assert await relay.drain_hinted() == 1 and sent == ["things"]
        assert (await db["others"].find_one({"_id": "x"}))["_outbox_pending"] is True
        relay.wake("x")
        assert await relay.drain_hinted() == 1 and sent == ["things", "others"]
        with pytest.raises(ValueError, match="not elsewhere"):
            relay.wake("x", collection="elsewhere")
    finally:
        await client.close()
