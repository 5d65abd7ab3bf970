"""Helpers for casework tests: incidents onto the topic as intake would put them, credentials."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from shared import topics
from shared.auth import dev_token
from shared.clock import ManualClock
from shared.envelope import Envelope, Event
from shared.events.intake import IncidentAccepted, WorkerMatch
from shared.settings import Settings
from tests.support.harness import produce


def auth(principal_id: str) -> dict[str, str]:
    """The Authorization header of a directory entry's development credential."""
    return {"authorization": f"Bearer {dev_token(principal_id)}"}


OFFICER = auth("officer-ani")
OFFICER2 = auth("officer-budi")
SUPERVISOR = auth("supervisor-dewi")
ADMIN = auth("admin-eko")
AUDITOR = auth("auditor-fajar")
MISSION = auth("kbri-seoul")


def incident(**over: Any) -> IncidentAccepted:
    """An accepted incident in Korea, unpaid wages, for a fresh worker unless worker_key is given."""
    now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    fields: dict[str, Any] = {
        "incident_id": uuid.uuid4().hex,
        "mission_id": "kbri-seoul",
        "country": "KR",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": now,
        "reported_at": now,
        "worker_key": uuid.uuid4().hex[:32],
        "worker_name": "Siti Rahayu",
        "match": WorkerMatch(non_procedural=False),
    }
    fields.update(over)
    return IncidentAccepted(**fields)


def envelope(
    event: Event, *, source: str = "lindungi/test", subject: str = "-", id: str | None = None
) -> Envelope:
    return Envelope.wrap(event, source=source, subject=subject, clock=ManualClock(), id=id)


async def publish(settings: Settings, event: Event, *, key: str, id: str | None = None) -> Envelope:
    """Put an event on its topic as its owner would (same envelope, keyed)."""
    env = envelope(event, subject=key, id=id)
    await produce(settings, event.topic.name, env.model_dump_json().encode(), key=key.encode())
    return env


async def publish_incident(settings: Settings, inc: IncidentAccepted, *, id: str | None = None) -> Envelope:
    """An IncidentAccepted on the incidents topic, keyed by worker_key like intake does."""
    return await publish(settings, inc, key=inc.worker_key, id=id)


async def case_of(client: httpx.AsyncClient, incident_id: str) -> dict[str, Any] | None:
    """The case an incident is in, as an officer reads it, or None while casework has not opened it."""
    r = await client.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found[0] if found else None


INCIDENTS = topics.INCIDENTS
