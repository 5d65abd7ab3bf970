"""Load through the public doors, by clients that retry as a careful client would.

HTTP clients retry a connection error, a timeout and a 503 (after its Retry-After) with the
same Idempotency-Key and the identical body, against either replica, and record every answer.
The Kafka door gets IncidentSubmitted messages, re-sent when the broker does not acknowledge.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared import topics
from shared.clock import SystemClock
from shared.envelope import Envelope
from shared.events.intake import IncidentReport, IncidentSubmitted
from shared.settings import Settings

# Eight missions, eight countries: the reporting doors of the load.
MISSIONS = {
    "kbri-seoul": "KR",
    "kbri-tokyo": "JP",
    "kbri-kuala-lumpur": "MY",
    "kbri-singapore": "SG",
    "kdei-taipei": "TW",
    "kjri-hong-kong": "HK",
    "kbri-riyadh": "SA",
    "kbri-abu-dhabi": "AE",
}
EVACUATION_COUNTRY = "QA"  # evacuated: every worker registered there (no incidents are sent there)
OPERATOR = {"Authorization": "Bearer dev-registry-operator"}
OFFICER = {"Authorization": "Bearer dev-officer-ani"}
SUPERVISOR = {"Authorization": "Bearer dev-supervisor-dewi"}

ORDINARY = [
    "unpaid_wages",
    "wants_to_go_home",
    "illness",
    "injury",
    "physical_abuse",
    "documents_withheld",
    "contract_mismatch",
    "lost_contact",
]
SEVERITIES = ["low"] * 3 + ["medium"] * 4 + ["high"] * 2 + ["critical"]


@dataclass
class Attempt:
    status: int | str  # an HTTP status, or "connection" / "timeout"
    at: float  # monotonic
    retry_after: str | None = None


@dataclass
class Call:
    """One logical request and every attempt it took."""

    door: str
    key: str
    attempts: list[Attempt] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)  # what each 2xx answer named
    final: int | str | None = None
    deliberate_repeat: bool = False


@dataclass
class Submission:
    """A report sent through the Kafka door."""

    mission_id: str
    key: str
    sends: int = 0
    failures: int = 0


@dataclass
class Worker:
    name: str
    dob: str
    nik: str
    country: str
    registered: bool


class Clients:
    """HTTP with retries, against the replicas of each service."""

    def __init__(self, urls: Callable[[str], list[str]], *, give_up_after: float) -> None:
        self.urls = urls
        self.give_up_after = give_up_after
        self.calls: list[Call] = []
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))

    async def close(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        door: str,
        service: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str],
        key: str,
        resource: Callable[[httpx.Response], str | None],
        json: Any = None,
        content: bytes | None = None,
        timeout: float = 60.0,
        record: Call | None = None,
    ) -> Call:
        c = record or Call(door, key)
        if record is None:
            self.calls.append(c)
        start = time.monotonic()
        replicas = self.urls(service)
        turn = random.randrange(len(replicas))
        wait = 0.5
        while True:
            base = replicas[turn % len(replicas)]
            try:
                r = await self.http.request(
                    method, base + path, headers=headers, json=json, content=content, timeout=timeout
                )
            except httpx.TimeoutException:
                c.attempts.append(Attempt("timeout", time.monotonic()))
            except httpx.TransportError:
                c.attempts.append(Attempt("connection", time.monotonic()))
            else:
                c.attempts.append(Attempt(r.status_code, time.monotonic(), r.headers.get("retry-after")))
                if r.status_code < 500:
                    c.final = r.status_code
                    if r.status_code < 300 or r.status_code == 409:
                        got = resource(r)
                        if got:
                            c.resources.append(got)
                    return c
            if time.monotonic() - start > self.give_up_after:
                c.final = c.attempts[-1].status
                return c
            turn += 1  # the other replica next (a load balancer would)
            last = c.attempts[-1]
            if last.status == 503 and last.retry_after and last.retry_after.isdigit():
                await asyncio.sleep(min(float(last.retry_after), 5.0))
            else:
                await asyncio.sleep(wait)
                wait = min(wait * 2, 4.0)


def incident_id(resp: httpx.Response) -> str | None:
    return resp.json().get("incident_id") if resp.status_code < 300 else None


# ---------------------------------------------------------------- the population


def make_workers(
    n: int, rng: random.Random, *, countries: list[str], registered_share: float
) -> list[Worker]:
    out = []
    for i in range(n):
        dob = date(1975, 1, 1) + timedelta(days=rng.randrange(0, 365 * 28))
        out.append(
            Worker(
                name=f"Pekerja {rng.choice(['Siti', 'Dewi', 'Budi', 'Agus', 'Rina'])} {i:05d}",
                dob=dob.isoformat(),
                nik=f"32{rng.randrange(10**13, 10**14):014d}",
                country=rng.choice(countries),
                registered=rng.random() < registered_share,
            )
        )
    return out


CSV_HEADER = (
    "nik,passport_number,full_name,date_of_birth,sex,home_province,home_regency,phone,next_of_kin_name,"
    "next_of_kin_relation,next_of_kin_phone,destination_country,sector,skill_level,scheme,agency_id,"
    "agency_licence,employer_name,contract_start,contract_end,departure_date,departure_port,training,"
    "certificates,status"
).split(",")


def departures_csv(workers: list[Worker]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_HEADER)
    w.writeheader()
    for x in workers:
        w.writerow(
            {
                "nik": x.nik,
                "full_name": x.name,
                "date_of_birth": x.dob,
                "sex": "F",
                "home_province": "Jawa Barat",
                "home_regency": "Indramayu",
                "destination_country": x.country,
                "sector": "domestic_work",
                "skill_level": "middle",
                "scheme": "agency",
                "agency_id": "p3mi-bina-karya",
                "employer_name": "Keluarga Penerima",
                "departure_date": "2025-06-01",
                "status": "departed",
            }
        )
    return buf.getvalue().encode()


def departure_body(x: Worker) -> dict[str, Any]:
    return {
        "full_name": x.name,
        "date_of_birth": x.dob,
        "sex": "F",
        "nik": x.nik,
        "home_province": "Jawa Tengah",
        "destination_country": x.country,
        "sector": "domestic_work",
        "skill_level": "middle",
        "scheme": "agency",
        "agency_id": "p3mi-bina-karya",
        "employer_name": "Keluarga Penerima",
        "departure_date": "2025-07-01",
        "status": "departed",
    }


def report(
    worker: Worker | None, *, country: str, category: str, severity: str, rng: random.Random
) -> dict[str, Any]:
    occurred = datetime.now(UTC) - timedelta(hours=rng.randrange(1, 240))
    body: dict[str, Any] = {
        "country": country,
        "category": category,
        "severity": severity,
        "occurred_at": occurred.isoformat(timespec="seconds"),
        "narrative": f"chaos load report ({category})",
    }
    if worker is not None:
        body["worker"] = {"full_name": worker.name, "date_of_birth": worker.dob, "nik": worker.nik}
    else:
        body["people_affected"] = rng.randrange(5, 40)
    return body


# ---------------------------------------------------------------- the Kafka door


class KafkaDoor:
    """Submits reports as a trusted mission system would; re-sends what the broker did not take."""

    def __init__(self, settings: Settings, *, give_up_after: float) -> None:
        self.settings = settings
        self.give_up_after = give_up_after
        self.submissions: list[Submission] = []
        self.poison: list[tuple[str, str]] = []  # (what was sent, the dead-letter kind expected)
        self.producer: AIOKafkaProducer | None = None

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            p = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                acks="all",
                request_timeout_ms=15000,
            )
            await p.start()
            self.producer = p
        return self.producer

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send_raw(self, value: bytes, key: bytes, sub: Submission | None = None) -> bool:
        start = time.monotonic()
        while time.monotonic() - start < self.give_up_after:
            try:
                p = await self._producer()
                await asyncio.wait_for(
                    p.send_and_wait(self.settings.topic(topics.INCIDENT_SUBMISSIONS.name), value, key=key), 30
                )
                return True
            except Exception:
                if sub is not None:
                    sub.failures += 1
                if self.producer is not None:
                    try:
                        await asyncio.wait_for(self.producer.stop(), 10)
                    except Exception:
                        pass
                    self.producer = None
                await asyncio.sleep(2)
        return False

    async def submit(self, mission_id: str, key: str, body: dict[str, Any], *, repeat: bool) -> Submission:
        sub = Submission(mission_id, key)
        self.submissions.append(sub)
        event = IncidentSubmitted(
            mission_id=mission_id, idempotency_key=key, report=IncidentReport.model_validate(body)
        )
        # A re-send of the same report is a new message (new envelope id) with the same key.
        for _ in range(2 if repeat else 1):
            env = Envelope.wrap(event, source=f"mission/{mission_id}", subject=key, clock=SystemClock())
            if await self.send_raw(env.model_dump_json().encode(), mission_id.encode(), sub):
                sub.sends += 1
        return sub

    async def send_poison(self) -> None:
        """Two messages that must end in the dead-letter topic, each for a reason the report names."""
        await self.send_raw(b"\x00\xffnot a report", b"chaos-poison")
        self.poison.append(("undecodable bytes on the Kafka door", "undecodable"))
        body = {
            "country": "KR",
            "category": "injury",
            "severity": "low",
            "occurred_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "worker": {"full_name": "Nobody Known"},
        }
        event = IncidentSubmitted(
            mission_id="kbri-atlantis",
            idempotency_key=uuid.uuid4().hex,
            report=IncidentReport.model_validate(body),
        )
        env = Envelope.wrap(event, source="mission/kbri-atlantis", subject="x", clock=SystemClock())
        await self.send_raw(env.model_dump_json().encode(), b"kbri-atlantis")
        self.poison.append(("a report from an unknown mission", "rejected"))
