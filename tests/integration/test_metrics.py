"""`/metrics` on every service: scrape, do work through the public doors, see the series move."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.casework.app import create_app as casework_app
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation.app import create_app as repatriation_app
from shared import topics
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import eventually, running
from tests.support.registry_data import OPERATOR, departure

pytestmark = pytest.mark.integration

MISSION = {"Authorization": "Bearer dev-kbri-seoul"}
OFFICER = {"Authorization": "Bearer dev-officer-ani"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor-dewi"}
INCIDENT = {
    "mission_id": "kbri-seoul",
    "country": "KR",
    "worker": {"full_name": "Siti Rahayu", "date_of_birth": "1994-02-11"},
    "category": "unpaid_wages",
    "severity": "critical",
    "occurred_at": "2026-11-20T09:30:00+09:00",
}


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a service's /metrics, by (name, sorted labels)."""
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def labelled(samples: dict, label: str) -> set[str]:  # type: ignore[type-arg]
    return {v for (_, labels) in samples for k, v in labels if k == label}


async def test_every_service_exports_metrics_that_move_with_work(settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 11, 21, tzinfo=UTC))
    async with contextlib.AsyncExitStack() as stack:
        reg = await stack.enter_async_context(running(registry_app(settings, clock)))
        intake = await stack.enter_async_context(running(intake_app(settings, clock)))
        cw = await stack.enter_async_context(running(casework_app(settings, clock, sweep_seconds=0.2)))
        esc = await stack.enter_async_context(
            running(escalation_app(settings, clock, timer_poll_seconds=0.1))
        )
        rep = await stack.enter_async_context(running(repatriation_app(settings, clock)))
        before = {n: await scrape(c) for n, c in [("registry", reg), ("intake", intake), ("casework", cw)]}
        for client in (esc, rep):
            assert value(await scrape(client), "lindungi_outbox_waiting") == 0

        # registry: a departure is stored and its event published (HTTP histogram by route template)
        r = await reg.post("/v1/departures", json=departure(status="registered"), headers=OPERATOR)
        assert r.status_code == 201, r.text
        dep_id = r.json()["departure_id"]
        assert (await reg.get(f"/v1/departures/{dep_id}", headers=OPERATOR)).status_code == 200

        async def published_departure() -> dict | None:  # type: ignore[type-arg]
            s = await scrape(reg)
            return (
                s
                if value(s, "lindungi_messages_published_total", topic=topics.DEPARTURES.name) >= 1
                else None
            )

        s = await eventually(published_departure)
        assert (
            value(
                s,
                "lindungi_http_request_duration_seconds_count",
                route="/v1/departures/{departure_id}",
                method="GET",
                status="200",
            )
            == 1
        )
        assert dep_id not in str(labelled(s, "route"))  # the template, never the id
        # intake consumed the departure (its projection) — counted per topic
        await eventually(
            lambda: _at_least(intake, "lindungi_messages_consumed_total", 1, topic=topics.DEPARTURES.name)
        )

        # an incident becomes a case; escalation starts a timer for it
        r = await intake.post("/v1/incidents", json=INCIDENT, headers=MISSION)
        assert r.status_code == 202, r.text
        await eventually(
            lambda: _at_least(cw, "lindungi_messages_consumed_total", 1, topic=topics.INCIDENTS.name)
        )
        await eventually(lambda: _at_least(esc, "lindungi_timers_pending", 1))
        timers = await scrape(esc)
        assert 0 < value(timers, "lindungi_timers_next_due_seconds") <= 3600

        # a claim, then its lease runs out
        r = await cw.post("/v1/queues/east_asia-general/claim-next", headers=OFFICER)
        assert r.status_code == 200, r.text
        s = await scrape(cw)
        assert value(s, "lindungi_case_claims_total", queue="east_asia-general", how="next") == 1
        clock.advance(timedelta(minutes=31))
        await eventually(
            lambda: _at_least(cw, "lindungi_case_claim_lease_expiries_total", 1, queue="east_asia-general")
        )

        # the critical case's acknowledge deadline (1 h) passes: the timer fires, late by the clock
        clock.advance(timedelta(hours=1))
        await eventually(lambda: _at_least(esc, "lindungi_timer_lateness_seconds_count", 1))
        s = await scrape(esc)
        assert value(s, "lindungi_messages_published_total", topic=topics.ESCALATIONS.name) >= 1

        # a poison message (no key) is dead-lettered by casework, counted per topic and kind
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic(topics.INCIDENTS.name), b"{}")
        finally:
            await producer.stop()
        await eventually(
            lambda: _at_least(
                cw, "lindungi_dead_letters_total", 1, topic=topics.INCIDENTS.name, kind="no-key"
            )
        )
        s = await scrape(cw)
        assert (
            value(
                s, "lindungi_consumer_lag", group="casework.intake.incidents.v1", topic=topics.INCIDENTS.name
            )
            >= 0
        )
        assert (
            "lindungi_consumer_lag",
            (("group", "casework.intake.incidents.v1"), ("topic", topics.INCIDENTS.name)),
        ) in s
        # counters only went up; nothing that was 0 before says so still
        assert value(before["casework"], "lindungi_messages_consumed_total", topic=topics.INCIDENTS.name) == 0
        # no personal data, no ids in any label of any service
        for client in (reg, intake, cw, esc, rep):
            text = (await client.get("/metrics")).text
            assert "Siti" not in text and dep_id not in text


async def _at_least(client: httpx.AsyncClient, name: str, n: float, **labels: str) -> bool:
    return value(await scrape(client), name, **labels) >= n
