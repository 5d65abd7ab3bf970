"""Helpers for repatriation tests and the bench: departure events, producing envelopes, HTTP auth."""

from __future__ import annotations

from datetime import UTC, date, datetime

from aiokafka import AIOKafkaProducer

from shared.auth import dev_token
from shared.clock import ManualClock
from shared.envelope import Envelope, Event
from shared.events.registry import DepartureRecorded, DepartureStatus, Scheme, Sector, SkillLevel
from shared.settings import Settings

PROVINCES = ["DKI Jakarta", "Jawa Barat", "Jawa Tengah", "Jawa Timur", "Nusa Tenggara Barat"]


def auth(principal_id: str) -> dict[str, str]:
    """The Authorization header of a development principal."""
    return {"authorization": f"Bearer {dev_token(principal_id)}"}


def departure(
    i: int,
    *,
    country: str = "MY",
    status: DepartureStatus = DepartureStatus.ACTIVE_ABROAD,
    version: int = 1,
    prefix: str = "w",
    province: str | None = None,
) -> DepartureRecorded:
    """A departure snapshot of worker number i."""
    return DepartureRecorded(
        worker_id=f"{prefix}-{i:06d}",
        departure_id=f"d-{prefix}-{i:06d}",
        version=version,
        change=status.value,
        status=status,
        full_name=f"Pekerja {prefix} {i}",
        date_of_birth=date(1990, 1, 1),
        home_province=province or PROVINCES[i % len(PROVINCES)],
        home_regency="Kota Contoh",
        destination_country=country,
        sector=Sector.MANUFACTURING,
        skill_level=SkillLevel.MIDDLE,
        scheme=Scheme.AGENCY,
        departure_date=date(2025, 6, 1),
        recorded_at=datetime(2025, 6, 1, tzinfo=UTC),
    )


def envelope_bytes(event: Event, *, key: str, id: str | None = None, source: str = "lindungi/test") -> bytes:
    env = Envelope.wrap(event, source=source, subject=key, clock=ManualClock(), id=id)
    return env.model_dump_json().encode()


async def produce_many(settings: Settings, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    """Put (key, value) records on a topic with one producer."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for key, value in items:
            await producer.send(settings.topic(topic), value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
