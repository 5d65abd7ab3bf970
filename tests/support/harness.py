"""Helpers for tests that run services in-process against the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared.kafka import Offsets, end_offsets, ensure_topics, read_range
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Start a service app (lifespan included) and give an HTTP client bound to it.

    A heartbeat keeps a timer on the loop for as long as the app lives, shutdown included: a
    fresh-clone run once stood still in test_escalation_deadlines with the loop asleep in
    epoll and nothing scheduled, and went on at once when a signal woke the loop, so something
    completed a future from another thread without waking the loop. The heartbeat bounds such a
    missed wake-up to 0.2 s; the cause is not found yet (see the closing note of 30 Nov 2026).
    """
    beat = asyncio.create_task(_heartbeat())
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                yield client
    finally:
        beat.cancel()


async def _heartbeat() -> None:
    while True:  # noqa: ASYNC110  (the point is a timer on the loop, not a condition)
        await asyncio.sleep(0.2)


async def eventually(check, timeout: float = 30.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll an async check until it returns something truthy; fail with the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def read_topic(
    settings: Settings, name: str, *, min_count: int = 0, timeout: float = 10.0
) -> list[Any]:
    """Every record on a topic so far, from the beginning, by partition and offset: waiting up to
    timeout for at least min_count of them (min_count 0: for a first one)."""
    await ensure_topics(settings)
    full = settings.topic(name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    records: list[Any] = []
    start: Offsets | None = None
    while True:
        end = await end_offsets(settings, [full])
        records += [r async for r in read_range(settings, end, start=start)]
        start = end
        if len(records) >= max(min_count, 1) or loop.time() >= deadline:
            break
        await asyncio.sleep(0.1)
    if min_count and start is not None:
        # one more short look, to see what should not be there
        await asyncio.sleep(0.5)
        records += [r async for r in read_range(settings, await end_offsets(settings, [full]), start=start)]
    return records


def envelopes(records: list[Any]) -> list[dict[str, Any]]:
    """Decode CloudEvents records."""
    return [json.loads(r.value) for r in records]


async def produce(
    settings: Settings, name: str, value: bytes, key: bytes | None = None, *, partition: int | None = None
) -> None:
    """Put raw bytes on a topic (on a given partition, or where its key goes), as a misbehaving or
    trusted producer would."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(name), value, key=key, partition=partition)
    finally:
        await producer.stop()
