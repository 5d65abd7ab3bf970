"""`lindungi status`: is everything up, and is anything piling up?

Each service's health and readiness (HTTP, at the addresses the console uses:
LINDUNGI_CONSOLE_<SERVICE>_URL), consumer lag per group and topic and dead letters per topic
(Kafka), outbox entries waiting and the oldest one's age, pending timers and the next due
(each service's database). Exit status: 0 every service is ready; 1 a service is down or not
ready; 2 Kafka or the database did not answer (the picture is incomplete).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from services.console.settings import ConsoleSettings
from services.escalation import store as escalation_store
from services.wiring import runtimes
from shared.kafka import consumer_lag
from shared.settings import Settings
from shared.topics import CATALOG

out = Console()


@dataclass
class Status:
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    lag: dict[tuple[str, str], int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    timers: tuple[int, datetime | None] = (0, None)
    problems: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def all_ready(self) -> bool:
        return all(s.get("ready") is True for s in self.services.values())


NOT_CHECKS = {"ready", "type", "title", "status", "detail", "instance"}


async def _service(client: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    try:
        health = await client.get(f"{url}/healthz")
        ready = await client.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return {"url": url, "health": f"unreachable ({type(exc).__name__})", "ready": False}
    # 200 {"ready": true, "mongodb": "ok", ...}; 503 the same members in a problem (application/problem+json)
    body = ready.json() if "json" in ready.headers.get("content-type", "") else {}
    why = ", ".join(f"{k}: {v}" for k, v in body.items() if k not in NOT_CHECKS and v != "ok")
    return {
        "url": url,
        "health": "ok" if health.status_code == 200 else f"HTTP {health.status_code}",
        "ready": ready.status_code == 200 and body.get("ready") is True,
        "why": why,
    }


async def _dead_letters(settings: Settings) -> dict[str, int]:
    """Messages in each dead-letter topic (end minus beginning offsets: nothing is read)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        out: dict[str, int] = {}
        for topic in CATALOG:
            name = settings.topic(topic.dlq)
            parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
            ends = await consumer.end_offsets(parts) if parts else {}
            begins = await consumer.beginning_offsets(parts) if parts else {}
            out[topic.name] = sum(ends[p] - begins[p] for p in parts)
        return out
    finally:
        await consumer.stop()


async def gather(settings: Settings, urls: dict[str, str], *, timeout: float = 5.0) -> Status:
    """Everything `lindungi status` shows."""
    st = Status()
    async with httpx.AsyncClient(timeout=timeout) as client:
        found = await asyncio.gather(*(_service(client, n, u) for n, u in urls.items()))
    st.services = dict(zip(urls, found, strict=True))
    rts = runtimes(settings)
    consumed = [pair for rt in rts.values() for pair in rt.consumed]
    try:
        st.lag = await asyncio.wait_for(consumer_lag(settings, consumed), timeout * 3)
        st.dead_letters = await asyncio.wait_for(_dead_letters(settings), timeout * 3)
    except Exception as exc:
        st.problems.append(f"Kafka at {settings.kafka_bootstrap_servers}: {type(exc).__name__}")
    try:
        for name, rt in rts.items():
            count, oldest = await asyncio.wait_for(rt.relay.waiting(), timeout)
            age = (rt.clock.now() - datetime.fromisoformat(oldest)).total_seconds() if oldest else None
            st.outbox[name] = (count, age)
        st.timers = await asyncio.wait_for(escalation_store.pending_timers(rts["escalation"].db), timeout)
    except Exception as exc:
        st.problems.append(f"the database at {settings.mongodb_uri}: {type(exc).__name__}")
    finally:
        for rt in rts.values():
            await rt.mongo.close()
    return st


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def show(st: Status, settings: Settings) -> None:
    table = Table("service", "address", "health", "ready", "why not", title="services")
    for name, service in st.services.items():
        ready = "[green]yes[/green]" if service["ready"] else "[red]no[/red]"
        table.add_row(name, service["url"], service["health"], ready, service.get("why", ""))
    out.print(table)
    table = Table("consumer group", "topic", "lag", title="consumer lag")
    prefix = settings.namespace
    for (group, topic), count in sorted(st.lag.items()):
        table.add_row(group.removeprefix(prefix), topic, f"[yellow]{count}[/yellow]" if count else "0")
    out.print(table)
    table = Table("topic", "dead letters", title="dead letters (lindungi dlq list TOPIC)")
    for topic, count in st.dead_letters.items():
        table.add_row(topic, f"[red]{count}[/red]" if count else "0")
    out.print(table)
    table = Table("service", "waiting", "oldest", title="outbox")
    for name, (count, age) in st.outbox.items():
        table.add_row(name, str(count), _age(age))
    out.print(table)
    pending, first = st.timers
    out.print(f"escalation timers pending: {pending}; next due: {first.isoformat() if first else '-'}")
    for problem in st.problems:
        out.print(f"[red]could not read {problem}[/red]")


def status(
    timeout: float = typer.Option(5.0, help="seconds to wait for each service, Kafka and the database"),
) -> None:
    """Health and readiness of every service, consumer lag, dead letters, outboxes and timers."""
    settings = Settings()
    st = asyncio.run(gather(settings, ConsoleSettings().service_urls(), timeout=timeout))
    show(st, settings)
    if st.problems:
        raise typer.Exit(2)
    if not st.all_ready:
        raise typer.Exit(1)
