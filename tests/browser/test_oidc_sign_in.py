"""The console's "Sign in with OpenID Connect" in a real browser: Debian's Chromium goes to the
real OpenID provider (deploy/local/oidc), logs in on its page and comes back signed in; the
console then calls the real registry with the provider's access token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from shared import oidc as verifier
from tests.support.infra import Endpoints
from tests.support.stack import Stack

pytestmark = pytest.mark.browser


@pytest.fixture
def oidc_stack(endpoints: Endpoints, oidc_issuer: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The registry and the console, both configured with the provider (read from the environment)."""
    monkeypatch.setenv("LINDUNGI_OIDC_ISSUER", oidc_issuer)
    verifier.reset()
    s = Stack(endpoints.kafka, endpoints.mongodb)
    s.start(only=["registry"])
    yield s
    s.stop()
    verifier.reset()


def test_sign_in_through_the_provider_in_a_browser(browser: Browser, oidc_stack: Stack) -> None:
    console = oidc_stack.urls["console"]
    ctx = browser.new_context(locale="en-US")
    ctx.add_cookies([{"name": "lindungi_lang", "value": "en", "url": console}])
    page = ctx.new_page()
    try:
        page.goto(f"{console}/registry")  # not signed in: the sign-in page, coming back here
        assert "/sign-in" in page.url
        page.click("#oidc-sign-in")
        page.wait_for_url(lambda url: "/login/username" in url)  # the provider's own page
        page.fill("#username", "officer-ani")
        page.fill("#password", "dev-officer-ani")
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: url.startswith(console) and "/registry" in url)
        assert "Ani (desk officer)" in page.content()
        # the console called the registry with the provider's token, which accepted it
        html = page.content()
        assert "Find a worker" in html and 'role="alert"' not in html, html[:2000]
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert cookies["lindungi_session"]["httpOnly"] and "lindungi_oidc" not in cookies
    finally:
        ctx.close()
