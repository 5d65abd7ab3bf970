"""Times keep their offset (issue 14), on the real database: what a mission sent as +09:00 reads back
as +09:00 (the UTC instant is stored, the offset beside it)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.intake.app import create_app as create_intake
from shared.clock import ManualClock
from shared.settings import Settings
from tests.integration.test_console_backends import _Route as Route
from tests.support.harness import running
from tests.support.registry_data import bearer
from tests.support.stack import free_port

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


async def test_a_missions_times_read_back_with_the_offset_it_sent(settings: Settings) -> None:
    async with running(create_intake(settings, ManualClock(NOW))) as intake:
        sent = []
        for who, country, occurred, reported in [
            ("kbri-seoul", "KR", "2026-11-20T09:30:00+09:00", "2026-11-20T14:05:00+09:00"),
            ("kbri-london", "GB", "2026-11-19T22:10:00-01:00", None),
        ]:
            body = {
                "country": country,
                "category": "unpaid_wages",
                "severity": "high",
                "occurred_at": occurred,
                "worker": {"full_name": "Siti Rahayu"},
            }
            if reported:
                body["reported_at"] = reported
            r = await intake.post("/v1/incidents", json=body, headers=bearer(who))
            assert r.status_code == 202, r.text
            assert r.json()["occurred_at"] == occurred
            sent.append((who, r.json()["incident_id"], occurred, reported))
        for who, iid, occurred, reported in sent:
            got = (await intake.get(f"/v1/incidents/{iid}", headers=bearer(who))).json()
            assert got["occurred_at"] == occurred
            # the time of receipt, when the mission gave none, is ours (UTC)
            assert got["reported_at"] == (reported or "2026-11-21T06:00:00Z")
        listed = (await intake.get("/v1/incidents", headers=bearer("kbri-seoul"))).json()
        assert [i["occurred_at"] for i in listed] == ["2026-11-20T09:30:00+09:00"]


async def test_the_console_shows_a_missions_time_with_the_offset_it_sent(settings: Settings) -> None:
    clock = ManualClock(NOW)
    intake = create_intake(settings, clock)
    async with intake.router.lifespan_context(intake):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=intake), base_url="http://intake")
        body = {
            "country": "KR",
            "category": "unpaid_wages",
            "severity": "high",
            "occurred_at": "2026-11-20T09:30:00+09:00",
            "reported_at": "2026-11-20T14:05:00+09:00",
            "worker": {"full_name": "Siti Rahayu"},
        }
        r = await api.post("/v1/incidents", json=body, headers=bearer("kbri-seoul"))
        assert r.status_code == 202, r.text
        dead = f"http://127.0.0.1:{free_port()}"
        console = console_app(
            ConsoleSettings(intake_url="http://intake", casework_url=dead, service_timeout_seconds=2),
            clock,
            transport=Route({"intake": httpx.ASGITransport(app=intake)}),
        )
        async with console.router.lifespan_context(console):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
            r = await client.post("/sign-in", data={"user_id": "kbri-seoul", "credential": "dev-kbri-seoul"})
            assert r.status_code == 303, r.text
            client.cookies.set("lindungi_lang", "en")
            page = await client.get("/mission")
            assert page.status_code == 200, page.text
            assert "20 Nov 2026, 14:05 +09:00" in page.text  # as Seoul sent it, not in the reader's zone
            await client.aclose()
        await api.aclose()
