"""Unmasked numbers on request, on the real broker and database: everyone sees NIK, passport and
phone masked; a registry writer who asks (?unmask=true) must say why (X-Purpose), and each asking
is in the read audit with its reason. Also with a user signed in at the real OpenID provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.harness import running
from tests.support.oidc import user_tokens
from tests.support.registry_data import OFFICER, OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NIK = "3171014501940007"
AUDITOR = bearer("auditor-fajar")
UNMASK = {"unmask": "true"}


async def test_unmasking_is_asked_for_with_a_reason_and_audited(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running(registry_app(settings, clock)) as registry:
        dep = (await registry.post("/v1/departures", json=departure(nik=NIK), headers=OPERATOR)).json()
        url = f"/v1/workers/{dep['worker_id']}"

        # masked for everyone by default, the registry's writers included; nothing recorded
        for who in (OFFICER, OPERATOR):
            r = await registry.get(url, headers=who)
            assert r.status_code == 200 and r.json()["nik"] == "************0007"
        # an officer may not ask
        r = await registry.get(url, params=UNMASK, headers={**OFFICER, "X-Purpose": "curious"})
        assert r.status_code == 403
        assert r.json()["errors"][0]["field"] == "unmask"
        # a writer must say why: no header, or a blank one, is refused naming the header
        for purpose in ({}, {"X-Purpose": "   "}):
            r = await registry.get(url, params=UNMASK, headers={**OPERATOR, **purpose})
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == "X-Purpose"
        r = await registry.post("/v1/workers/search", json={"nik": NIK}, params=UNMASK, headers=OPERATOR)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "X-Purpose"
        assert (
            await registry.get("/v1/audit/reads", params={"worker_id": dep["worker_id"]}, headers=AUDITOR)
        ).json() == []

        clock.advance(timedelta(minutes=5))
        r = await registry.get(
            url, params=UNMASK, headers={**OPERATOR, "X-Purpose": "correcting a mistyped NIK"}
        )
        assert r.status_code == 200 and r.json()["nik"] == NIK
        reads = (
            await registry.get("/v1/audit/reads", params={"worker_id": dep["worker_id"]}, headers=AUDITOR)
        ).json()
        assert [(x["actor"], x["purpose"], x["via"], x["at"][:19]) for x in reads] == [
            (
                "registry-operator",
                "correcting a mistyped NIK",
                "GET /v1/workers/{worker_id}",
                "2026-11-20T06:05:00",
            )
        ]


async def test_a_user_signed_in_at_the_provider_asks_in_the_same_way(settings: Settings, oidc: str) -> None:
    admin = (await asyncio.to_thread(user_tokens, oidc, "admin-eko"))["access_token"]
    officer = (await asyncio.to_thread(user_tokens, oidc, "officer-budi"))["access_token"]
    async with running(registry_app(settings, ManualClock(NOW))) as registry:
        dep = (await registry.post("/v1/departures", json=departure(nik=NIK), headers=OPERATOR)).json()
        url = f"/v1/workers/{dep['worker_id']}"
        as_officer = {"Authorization": f"Bearer {officer}", "X-Purpose": "curious"}
        assert (await registry.get(url, params=UNMASK, headers=as_officer)).status_code == 403
        as_admin = {"Authorization": f"Bearer {admin}", "X-Purpose": "court order 12/2026"}
        r = await registry.get(url, params=UNMASK, headers=as_admin)
        assert r.status_code == 200 and r.json()["nik"] == NIK
        reads = (
            await registry.get("/v1/audit/reads", params={"worker_id": dep["worker_id"]}, headers=AUDITOR)
        ).json()
        assert [(x["actor"], x["roles"], x["purpose"]) for x in reads] == [
            ("admin-eko", ["administrator"], "court order 12/2026")
        ]
