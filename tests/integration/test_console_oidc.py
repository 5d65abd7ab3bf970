"""The console signs in through the real OpenID provider (authorization code flow with PKCE,
state and nonce), over HTTP with the provider's own login form, and calls the real registry with
the access token; a registry operator asks to see a worker's numbers unmasked, with a reason."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.registry.app import create_app as registry_app
from shared.clock import ManualClock
from shared.settings import Settings
from tests.integration.test_console_backends import _Route
from tests.support.registry_data import OPERATOR, bearer, departure

pytestmark = pytest.mark.integration

CONSOLE = "http://127.0.0.1:8000"  # the provider sends browsers back to 127.0.0.1 (any port)
NIK = "3171014501940007"


async def _through_the_provider(
    console: httpx.AsyncClient, user: str, password: str, *, next_path: str = "/registry"
) -> httpx.Response:
    """Click "Sign in with OpenID Connect", log in at the provider, come back; the console's answer."""
    r = await console.get("/auth/oidc/start", params={"next": next_path})
    assert r.status_code == 303, r.text
    authorize = r.headers["location"]
    query = parse_qs(urlparse(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
    assert query["redirect_uri"] == [f"{CONSOLE}/auth/oidc/callback"]
    async with httpx.AsyncClient() as browser:
        r = await browser.get(authorize)
        assert r.status_code == 302, r.text
        login = str(r.url.join(r.headers["location"]))
        page = await browser.get(login)
        assert 'name="password"' in page.text
        form = {
            "id": parse_qs(urlparse(login).query)["authRequestID"][0],
            "username": user,
            "password": password,
        }
        r = await browser.post(login.split("?")[0], data=form)
        while r.status_code in (302, 303) and not r.headers["location"].startswith(CONSOLE):
            r = await browser.get(r.url.join(r.headers["location"]))
        if r.status_code == 200:
            return r  # the provider's login page again: wrong password
        assert r.status_code in (302, 303), r.text
    back = urlparse(r.headers["location"])
    return await console.get(f"{back.path}?{back.query}")


async def test_sign_in_through_the_provider_then_unmask_with_a_reason(settings: Settings, oidc: str) -> None:
    clock = ManualClock()
    registry = registry_app(settings, clock)
    async with registry.router.lifespan_context(registry):
        reg = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry), base_url="http://registry")
        dep = (await reg.post("/v1/departures", json=departure(nik=NIK), headers=OPERATOR)).json()
        app = console_app(
            ConsoleSettings(oidc_issuer=oidc, registry_url="http://registry"),
            clock,
            transport=_Route({"registry": httpx.ASGITransport(app=registry)}),
        )
        async with app.router.lifespan_context(app):
            console = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)
            console.cookies.set("lindungi_lang", "en")
            page = await console.get("/sign-in")
            assert 'id="oidc-sign-in"' in page.text and 'name="credential"' in page.text

            # a wrong password stays at the provider; nobody is signed in at the console
            stayed = await _through_the_provider(console, "registry-operator", "dev-officer-ani")
            assert stayed.status_code == 200 and 'name="password"' in stayed.text
            assert "lindungi_session" not in console.cookies

            r = await _through_the_provider(console, "registry-operator", "dev-registry-operator")
            assert r.status_code == 303 and r.headers["location"] == "/registry", r.text
            assert "HttpOnly" in r.headers["set-cookie"]
            found = await console.post("/registry/search", data={"nik": NIK})
            assert found.status_code == 200, found.text
            assert "************0007" in found.text and NIK not in found.text
            assert 'id="unmask-form"' in found.text

            url = f"/registry/workers/{dep['worker_id']}/unmask"
            blank = await console.post(url, data={"purpose": "  "})
            assert blank.status_code == 422 and "Say why you need the numbers unmasked." in blank.text
            shown = await console.post(url, data={"purpose": "correcting a mistyped NIK"})
            assert shown.status_code == 200 and NIK in shown.text and 'id="unmasked-note"' in shown.text
            reads = (
                await reg.get(
                    "/v1/audit/reads", params={"worker_id": dep["worker_id"]}, headers=bearer("auditor-fajar")
                )
            ).json()
            assert [(x["actor"], x["purpose"]) for x in reads] == [
                ("registry-operator", "correcting a mistyped NIK")
            ]

            # an officer signed in through the provider sees masked numbers and no unmask form
            console.cookies.clear()
            console.cookies.set("lindungi_lang", "en")
            r = await _through_the_provider(console, "officer-ani", "dev-officer-ani")
            assert r.status_code == 303
            found = await console.post("/registry/search", data={"nik": NIK})
            assert "************0007" in found.text and 'id="unmask-form"' not in found.text
            refused = await console.post(url, data={"purpose": "curious"})
            assert NIK not in refused.text and refused.status_code == 403
            await console.aclose()
        await reg.aclose()


async def test_a_callback_with_another_state_or_without_the_browsers_cookie_signs_nobody_in(
    oidc: str,
) -> None:
    app = console_app(ConsoleSettings(oidc_issuer=oidc), ManualClock())
    async with app.router.lifespan_context(app):
        console = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE)
        console.cookies.set("lindungi_lang", "en")
        r = await console.get("/auth/oidc/start")
        assert r.status_code == 303
        forged = await console.get("/auth/oidc/callback", params={"code": "x", "state": "not-mine"})
        assert forged.status_code == 401 and "state does not match" in forged.text
        console.cookies.clear()
        lost = await console.get("/auth/oidc/callback", params={"code": "x", "state": "y"})
        assert lost.status_code == 401 and "start again" in lost.text
        denied = await console.get("/auth/oidc/callback", params={"error": "access_denied"})
        assert denied.status_code == 401 and "access_denied" in denied.text
        assert "lindungi_session" not in console.cookies
        await console.aclose()
