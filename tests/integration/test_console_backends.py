"""The console over the real casework service, with escalation down: the page says so and the rest works."""

from __future__ import annotations

import httpx
import pytest

from services.casework.app import create_app as casework_app
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from shared.clock import ManualClock
from shared.settings import Settings
from tests.support.stack import free_port

pytestmark = pytest.mark.integration


async def test_a_service_that_is_down_is_named_on_the_page_and_the_rest_still_shows(
    settings: Settings,
) -> None:
    clock = ManualClock()
    casework = casework_app(settings, clock)
    async with casework.router.lifespan_context(casework):
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        console = console_app(
            ConsoleSettings(casework_url="http://casework", escalation_url=dead, service_timeout_seconds=2),
            clock,
            transport=_Route({"casework": httpx.ASGITransport(app=casework)}),
        )
        async with console.router.lifespan_context(console):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
            r = await client.get("/supervision")
            assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
            r = await client.post(
                "/sign-in", data={"user_id": "supervisor-dewi", "credential": "dev-supervisor-dewi"}
            )
            assert r.status_code == 303
            cookie = r.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            client.cookies.set("lindungi_lang", "en")
            page = await client.get("/supervision")
            assert page.status_code == 200
            assert "The escalation service is not answering right now" in page.text
            assert 'id="depth"' in page.text  # casework's part of the page is there
            assert "Traceback" not in page.text
            refused = await client.post(
                "/sign-in", data={"user_id": "supervisor-dewi", "credential": "dev-officer-ani"}
            )
            assert refused.status_code == 401
            await client.aclose()


class _Route(httpx.AsyncBaseTransport):
    """Sends requests for a named host to an in-process app, the rest over the network."""

    def __init__(self, apps: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.apps = apps
        self.net = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.apps.get(request.url.host, self.net)
        return await target.handle_async_request(request)
