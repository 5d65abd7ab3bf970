"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright, axe-core from npm."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.infra import Endpoints
from tests.support.stack import Stack

CHROMIUM = os.environ.get("LINDUNGI_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium (as root)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make browser` runs npm ci in tests/browser")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def stack(endpoints: Endpoints) -> Iterator[Stack]:
    s = Stack(endpoints.kafka, endpoints.mongodb)
    s.start()
    yield s
    s.stop()


class Reader:
    """A signed-in browser page that records console errors."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the current page."""
        self.page.add_script_tag(content=AXE.read_text())
        found = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.fixture
def open_as(browser: Browser, stack: Stack) -> Iterator[Any]:
    """open_as(user_id, tz=..., js=True) -> a Reader signed in as that user."""
    contexts = []

    def make(user_id: str, *, tz: str = "Asia/Jakarta", js: bool = True, lang: str | None = None) -> Reader:
        ctx = browser.new_context(timezone_id=tz, java_script_enabled=js, locale="en-US")
        contexts.append(ctx)
        if lang:
            ctx.add_cookies([{"name": "lindungi_lang", "value": lang, "url": stack.urls["console"]}])
        reader = Reader(ctx.new_page(), stack.urls["console"])
        reader.go("/sign-in")
        reader.page.fill("#user_id", user_id)
        reader.page.fill("#credential", f"dev-{user_id}")
        reader.page.click("button[type=submit].primary")
        reader.page.wait_for_url(lambda url: "/sign-in" not in url)
        return reader

    yield make
    for c in contexts:
        c.close()
