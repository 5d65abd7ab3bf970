"""The console's notification inbox over the real casework and escalation services (issue 14, "the
console can show a notification inbox"): an officer sees the notifications of its own cases, a
supervisor every region's or one's; the navigation links it for desk roles; escalation's inbox
API is role-scoped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.casework.app import create_app as casework_app
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.escalation import notification_store
from services.escalation.app import create_app as escalation_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.integration.test_console_backends import _Route
from tests.support.casework import OFFICER, SUPERVISOR, incident, publish_incident
from tests.support.harness import eventually, running

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def record(n: int, case_id: str, *, state: str, region: str, country: str) -> dict[str, Any]:
    """A notification record as the notifier keeps it once its outcome is folded in."""
    return {
        "_id": f"n-{n}",
        "action_id": f"a-{n}",
        "rule_id": "critical-ack-1h",
        "kind": "notify",
        "to": "supervisor",
        "case_id": case_id,
        "country": country,
        "region": region,
        "contact": "desk-supervisors",
        "channel": "email",
        "state": state,
        "attempts": 3 if state == "failed" else 1,
        "created_at": NOW + timedelta(minutes=n),
        "finished_at": NOW + timedelta(minutes=n, seconds=5) if state != "pending" else None,
        "last_error": "451 try again later" if state == "failed" else None,
    }


async def sign_in(client: httpx.AsyncClient, user: str) -> None:
    client.cookies.clear()
    r = await client.post("/sign-in", data={"user_id": user, "credential": f"dev-{user}"})
    assert r.status_code == 303, r.text
    client.cookies.set("lindungi_lang", "en")


async def test_the_notification_inbox_shows_a_desk_user_what_reached_its_cases_or_region(
    settings: Settings,
) -> None:
    clock = ManualClock(NOW)
    cw, esc = casework_app(settings, clock), escalation_app(settings, clock, timer_loop=False)
    async with running(cw) as cw_http, running(esc) as esc_http:
        mine = incident()
        await publish_incident(settings, mine)

        async def case_of() -> Any:
            found = (
                await cw_http.get("/v1/cases", params={"incident_id": mine.incident_id}, headers=OFFICER)
            ).json()
            return found[0] if found else None

        case_id = (await eventually(case_of))["case_id"]
        r = await cw_http.post(f"/v1/cases/{case_id}/claim", json={}, headers=OFFICER)
        assert r.status_code == 200 and r.json()["assignee"] == "officer-ani"
        db = esc.state.runtime.db
        await db[notification_store.NOTIFICATIONS].insert_many(
            [
                record(1, case_id, state="sent", region="east_asia", country="KR"),
                record(2, "someone-elses-case", state="failed", region="middle_east", country="SA"),
                record(3, case_id, state="pending", region="east_asia", country="KR"),  # not finished
                record(4, case_id, state="withdrawn", region="east_asia", country="KR"),
            ]
        )

        # the API: an officer names its cases; a supervisor reads a region, or all
        assert (await esc_http.get("/v1/notifications/inbox", headers=OFFICER)).status_code == 422
        every = (await esc_http.get("/v1/notifications/inbox", headers=SUPERVISOR)).json()
        assert [n["notification_id"] for n in every] == ["n-4", "n-2", "n-1"]  # newest first
        paged = await esc_http.get("/v1/notifications/inbox", params={"limit": 2}, headers=SUPERVISOR)
        assert 'rel="next"' in paged.headers["link"]
        bad = await esc_http.get("/v1/notifications/inbox", params={"region": "mars"}, headers=SUPERVISOR)
        assert bad.status_code == 422 and "region" in bad.text

        console = console_app(
            ConsoleSettings(casework_url="http://casework", escalation_url="http://escalation"),
            clock,
            transport=_Route(
                {"casework": httpx.ASGITransport(app=cw), "escalation": httpx.ASGITransport(app=esc)}
            ),
        )
        async with console.router.lifespan_context(console):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
            await sign_in(client, "officer-ani")
            desk = await client.get("/desk")
            assert 'href="/desk/notifications"' in desk.text  # in the navigation
            page = await client.get("/desk/notifications")
            assert page.status_code == 200, page.text
            assert 'data-notification="n-1"' in page.text and 'data-notification="n-4"' in page.text
            assert 'data-notification="n-2"' not in page.text  # not her case
            assert 'data-notification="n-3"' not in page.text  # still being delivered
            assert "withdrawn" in page.text and f'href="/cases/{case_id}"' in page.text

            await sign_in(client, "officer-budi")  # no cases: nothing
            page = await client.get("/desk/notifications")
            assert page.status_code == 200 and "No notifications." in page.text

            await sign_in(client, "supervisor-dewi")
            page = await client.get("/desk/notifications")
            assert all(f'data-notification="n-{i}"' in page.text for i in (1, 2, 4))
            page = await client.get("/desk/notifications", params={"region": "middle_east"})
            assert 'data-notification="n-2"' in page.text and 'data-notification="n-1"' not in page.text
            assert "451 try again later" in page.text

            await sign_in(client, "kbri-seoul")  # a mission: not its page
            page = await client.get("/desk/notifications")
            assert page.status_code == 403
            await client.aclose()
