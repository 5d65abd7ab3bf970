"""`lindungi dlq`: list dead letters with their reasons, show one, re-drive it after a fix, once."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from aiokafka import AIOKafkaProducer

from services.casework.app import create_app as casework_app
from shared import topics
from shared.clock import ManualClock
from shared.envelope import Envelope
from shared.logs import redact
from shared.settings import Settings
from tests.support.casework import OFFICER, incident
from tests.support.harness import ROOT, eventually, produce, read_topic, running

pytestmark = pytest.mark.integration


async def lindungi(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
        "COLUMNS": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deploy.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_a_dead_letter_is_listed_shown_and_replayed_once(settings: Settings) -> None:

    good = incident()
    env = Envelope.wrap(good, source="lindungi/intake", subject=good.incident_id, clock=ManualClock())
    name = topics.INCIDENTS.name
    async with running(casework_app(settings)) as cw:
        # Sent without its key by a faulty producer: casework dead-letters it.
        await produce(settings, name, env.model_dump_json().encode(), key=None)
        await read_topic(settings, topics.INCIDENTS.dlq, min_count=1, timeout=30)

        code, text = await lindungi(settings, "dlq", "list", name)
        assert code == 0 and "no-key" in text, text
        ref = next(w for w in text.split() if ":" in w and w.split(":")[0].isdigit())
        code, text = await lindungi(settings, "dlq", "show", name, ref)
        # the letter, as the CLI prints it: a hex id with 16 digits in a row is masked as a NIK
        assert code == 0 and "dlq-error-kind: no-key" in text and redact(good.incident_id) in text, text

        # A letter a database outage left (the handler failed past its retries): once the
        # database is back, the operator re-drives it and the case opens, once.
        lost = incident()
        lost_env = Envelope.wrap(
            lost, source="lindungi/intake", subject=lost.incident_id, clock=ManualClock()
        )
        await produce_with_headers(
            settings,
            topics.INCIDENTS.dlq,
            lost_env.model_dump_json().encode(),
            key=lost.worker_key.encode(),
            headers={
                "dlq-error-kind": "handler-failed",
                "dlq-error": "ServerSelectionTimeoutError: 127.0.0.1:27017 refused",
                "dlq-origin-topic": settings.topic(name),
                "ce_id": lost_env.id,
            },
        )
        letters = await read_topic(settings, topics.INCIDENTS.dlq, min_count=2, timeout=30)
        (mine,) = [r for r in letters if dict(r.headers)["dlq-error-kind"] == b"handler-failed"]
        lost_ref = f"{mine.partition}:{mine.offset}"
        code, text = await lindungi(settings, "dlq", "replay", name, lost_ref)
        assert code == 0 and f"replayed 1: {lost_ref}" in text, text
        case = await eventually(lambda: cases_of(cw, lost.incident_id))
        code, text = await lindungi(settings, "dlq", "replay", name, lost_ref)
        assert code == 0 and "replayed 0" in text and "already replayed" in text, text
        code, text = await lindungi(settings, "dlq", "replay", name, "9:999")
        assert code == 1 and "no such dead letter" in text
        assert await cases_of(cw, lost.incident_id) == case  # still the one case
        assert await cases_of(cw, good.incident_id) == []  # the unkeyed one was not re-driven


async def cases_of(cw, incident_id: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    r = await cw.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
    return r.json()  # type: ignore[no-any-return]


async def produce_with_headers(
    settings: Settings, name: str, value: bytes, *, key: bytes, headers: dict[str, str]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(name), value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
    finally:
        await producer.stop()
