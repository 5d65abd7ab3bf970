"""Shared fixtures: real endpoints once a session, a fresh namespace per test, services in-process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.namespace import drop_namespace
from shared.settings import Settings
from tests.support.infra import Endpoints, find_or_start, find_or_start_oidc
from tests.support.watchdog import Watchdog

WATCHDOG = Watchdog()


def pytest_configure(config: pytest.Config) -> None:
    WATCHDOG.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    WATCHDOG.enter(item.nodeid)
    try:
        return (yield)
    finally:
        WATCHDOG.leave()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in WATCHDOG.dumps:
        terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    found, started = find_or_start()
    yield found
    for c in started:
        with contextlib.suppress(Exception):
            c.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def oidc_issuer() -> str:
    """The real OpenID provider's issuer (deploy/local/oidc, started by infra.sh when needed)."""
    return find_or_start_oidc()


@pytest.fixture
def oidc(oidc_issuer: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Services of this test accept the provider's tokens (LINDUNGI_OIDC_ISSUER set); the issuer."""
    from shared import oidc as verifier

    monkeypatch.setenv("LINDUNGI_OIDC_ISSUER", oidc_issuer)
    monkeypatch.setenv("LINDUNGI_OIDC_AUDIENCE", "lindungi")
    monkeypatch.delenv("LINDUNGI_OIDC_JWKS_URL", raising=False)
    verifier.reset()
    yield oidc_issuer
    verifier.reset()


@pytest.fixture
async def settings(endpoints: Endpoints) -> AsyncIterator[Settings]:
    """Settings for one test: its own topics, consumer groups and databases."""
    s = Settings(
        kafka_bootstrap_servers=endpoints.kafka,
        mongodb_uri=endpoints.mongodb,
        namespace=f"t{uuid.uuid4().hex[:10]}_",
        outbox_poll_seconds=0.2,
        outbox_sweep_seconds=1.0,
        handler_backoff_seconds=0.02,
    )
    yield s
    await drop_namespace(s)
