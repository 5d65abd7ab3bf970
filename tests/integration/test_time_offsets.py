"""Times keep their offset (issue 14), on the real database: what a mission sent as +09:00 reads back
as +09:00 (the UTC instant is stored, the offset beside it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.casework.app import create_app as create_casework
from services.console.app import create_app as console_app
from services.console.i18n import Formats
from services.console.settings import ConsoleSettings
from services.intake.app import create_app as create_intake
from shared.clock import ManualClock
from shared.settings import Settings
from tests.integration.test_console_backends import _Route as Route
from tests.support.casework import OFFICER
from tests.support.harness import eventually, running
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


async def test_the_case_page_keeps_the_missions_offsets_and_shows_desk_times_in_the_readers_zone(
    settings: Settings,
) -> None:
    """The decision: a time is shown in the offset its sender wrote it in wherever the service kept
    that offset (a report's occurred_at and reported_at at intake); the services' own instants
    (when the case opened, deadlines, the timeline) are shown in the reader's zone, offset visible."""
    clock = ManualClock(NOW)
    intake, cw = create_intake(settings, clock), create_casework(settings, clock)
    async with running(intake) as api, running(cw) as cw_http:
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
        incident_id = r.json()["incident_id"]

        async def case() -> Any:
            found = (
                await cw_http.get("/v1/cases", params={"incident_id": incident_id}, headers=OFFICER)
            ).json()
            return found[0] if found else None

        case_id = (await eventually(case))["case_id"]
        console = console_app(
            ConsoleSettings(
                intake_url="http://intake", casework_url="http://casework", service_timeout_seconds=2
            ),
            clock,
            transport=Route(
                {"intake": httpx.ASGITransport(app=intake), "casework": httpx.ASGITransport(app=cw)}
            ),
        )
        async with console.router.lifespan_context(console):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
            r = await client.post(
                "/sign-in", data={"user_id": "officer-ani", "credential": "dev-officer-ani"}
            )
            assert r.status_code == 303, r.text
            client.cookies.set("lindungi_lang", "en")
            client.cookies.set("lindungi_tz", "Asia/Jakarta")  # the reader is in Jakarta (+07:00)
            page = await client.get(f"/cases/{case_id}")
            assert page.status_code == 200, page.text
            line = page.text[page.text.index(f'data-incident="{incident_id}"') :].split("</li>")[0]
            assert "20 Nov 2026, 14:05 +09:00" in line and "20 Nov 2026, 09:30 +09:00" in line  # as sent
            opened = page.text[page.text.index('data-kind="opened"') :].split("</li>")[0]
            assert "21 Nov 2026, 13:00 +07:00" in opened  # the service's instant, in the reader's zone
            # triage may recategorise (e.g. a death): the form offers the categories, the current chosen
            assert (
                'id="triage-category"' in page.text and '<option value="unpaid_wages" selected>' in page.text
            )
            r = await client.post(
                f"/cases/{case_id}/act/triage",
                data={"category": "death", "reason": "confirmed by the hospital"},
            )
            assert r.status_code == 303, r.text
            assert (await cw_http.get(f"/v1/cases/{case_id}", headers=OFFICER)).json()["category"] == "death"
            await client.aclose()


def test_a_time_a_sender_wrote_is_told_apart_from_other_values() -> None:
    fmt = Formats("en", ZoneInfo("Asia/Jakarta"), NOW)
    assert fmt.kept_offset("2026-11-21T08:00:00+09:00")
    assert fmt.as_sent("2026-11-21T08:00:00+09:00") == "21 Nov 2026, 08:00 +09:00"
    assert not fmt.kept_offset("2026-11-21T08:00:00")  # no offset: nothing to keep
    assert not fmt.kept_offset("GA-881") and not fmt.kept_offset(True) and not fmt.kept_offset("2026-11-21")
