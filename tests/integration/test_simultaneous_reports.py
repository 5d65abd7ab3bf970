"""Simultaneous first reports (issue 14), on the real broker and database: two missions posting their
first report on the same worker at the same instant, to two intake replicas, are linked every time."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from services.intake.app import create_app as create_intake
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import running
from tests.support.registry_data import bearer

pytestmark = pytest.mark.integration

KUALA_LUMPUR = bearer("kbri-kuala-lumpur")
JOHOR_BAHRU = bearer("kjri-johor-bahru")
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
ROUNDS = 12


def report(worker: dict[str, str]) -> dict[str, Any]:
    return {
        "country": "MY",
        "category": "unpaid_wages",
        "severity": "high",
        "occurred_at": "2026-11-20T09:30:00+08:00",
        "narrative": "Wages unpaid for two months.",
        "worker": worker,
    }


async def test_two_first_reports_at_one_instant_are_linked_every_time(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with (
        running(create_intake(settings, clock)) as one,
        running(create_intake(settings, clock)) as two,
    ):
        for n in range(ROUNDS):
            # the same worker by NIK in even rounds, by passport in odd ones
            worker = (
                {"nik": f"3171{random.randrange(10**12):012d}"}
                if n % 2 == 0
                else {"passport_number": f"X{random.randrange(10**7):07d}"}
            )
            a, b = await asyncio.gather(
                one.post("/v1/incidents", json=report(worker), headers=KUALA_LUMPUR),
                two.post("/v1/incidents", json=report(worker), headers=JOHOR_BAHRU),
            )
            assert (a.status_code, b.status_code) == (202, 202), (a.text, b.text)
            ida, idb = a.json()["incident_id"], b.json()["incident_id"]
            assert a.json()["worker_key"] == b.json()["worker_key"]
            # each reads back linked to the other, whichever came first
            got_a = (await one.get(f"/v1/incidents/{ida}", headers=KUALA_LUMPUR)).json()
            got_b = (await two.get(f"/v1/incidents/{idb}", headers=JOHOR_BAHRU)).json()
            assert (got_a["linked_incident_ids"], got_b["linked_incident_ids"]) == ([idb], [ida]), (
                f"round {n}"
            )
            # and exactly one of the two accepted events names the other (the later one)
            assert sorted([len(a.json()["linked_incident_ids"]), len(b.json()["linked_incident_ids"])]) == [
                0,
                1,
            ]
