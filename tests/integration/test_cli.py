"""`lindungi status` and `lindungi rules check` against the real broker and database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from deploy.cli import app as cli
from services.escalation.engine import DEFAULT_RULES
from shared import topics
from shared.clock import ManualClock
from tests.support.infra import Endpoints
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

MISSION = {"Authorization": "Bearer dev-kbri-seoul"}


@pytest.fixture
def stack(endpoints: Endpoints) -> Iterator[Stack]:
    s = Stack(endpoints.kafka, endpoints.mongodb, clock=ManualClock(datetime(2026, 11, 21, tzinfo=UTC)))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def env_of(stack: Stack) -> dict[str, str]:
    """What an operator's shell would export: the services' endpoints and their addresses."""
    s = stack.settings
    return {
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "MONGODB_URI": s.mongodb_uri,
        "LINDUNGI_NAMESPACE": s.namespace,
        "COLUMNS": "220",
        **{f"LINDUNGI_CONSOLE_{n.upper()}_URL": u for n, u in stack.urls.items() if n != "console"},
    }


def row(text: str, *cells: str) -> bool:
    """A table row with these cells, in order."""
    return re.search(r"\s*│\s*".join(re.escape(c) for c in cells), text) is not None


async def test_status_shows_services_lag_dead_letters_outboxes_and_timers(stack: Stack) -> None:
    env = env_of(stack)
    async with httpx.AsyncClient(base_url=stack.urls["intake"]) as intake:
        r = await intake.post(
            "/v1/incidents",
            headers=MISSION,
            json={
                "mission_id": "kbri-seoul",
                "country": "KR",
                "worker": {"full_name": "Siti Rahayu", "date_of_birth": "1994-02-11"},
                "category": "unpaid_wages",
                "severity": "critical",
                "occurred_at": "2026-11-20T09:30:00+09:00",
            },
        )
        assert r.status_code == 202, r.text
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap_servers)
    await producer.start()
    try:  # a poison message: casework dead-letters it
        await producer.send_and_wait(stack.settings.topic(topics.INCIDENTS.name), b"not json", key=b"k")
    finally:
        await producer.stop()

    # every group consuming incidents (casework, escalation, repatriation) dead-letters it once
    groups = {
        group
        for server in stack.servers.values()
        if (rt := getattr(server.config.app.state, "runtime", None)) is not None
        for topic, group in rt.consumed
        if topic == topics.INCIDENTS
    }
    assert len(groups) >= 2

    async def status() -> tuple[bool, str]:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["status"], env=env)
        assert result.exit_code == 0, result.output  # every service ready
        text = result.stdout
        return row(text, topics.INCIDENTS.name, str(len(groups))) and "timers pending: 0" not in text, text

    deadline = asyncio.get_running_loop().time() + 30
    done, text = await status()
    while not done and asyncio.get_running_loop().time() < deadline:
        done, text = await status()
    assert done, text
    for name in ("registry", "intake", "casework", "escalation", "repatriation"):
        assert row(text, name, stack.urls[name], "ok", "yes")
    assert row(text, "casework.intake.incidents.v1", topics.INCIDENTS.name, "0")  # caught up
    assert re.search(r"next due: 2026-11-2\dT", text)
    assert row(text, "intake", "0", "-")  # the outbox drained

    # a service goes away: exit 1, and it says which
    await asyncio.to_thread(stack.halt, "registry")
    await _refused(stack.urls["registry"])
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["status"], env=env)
    assert result.exit_code == 1
    assert re.search(r"registry\s*│[^│]*│\s*unreachable", result.stdout)

    # Kafka does not answer: exit 2, the picture is incomplete and says why
    away = {**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["status", "--timeout", "2"], env=away)
    assert result.exit_code == 2 and "could not read Kafka at 127.0.0.1:9" in result.stdout


async def _refused(url: str) -> None:
    """Nothing answers at url once its server's serve() returned; if something does, say what."""
    async with httpx.AsyncClient() as client:
        try:
            r = await client.get(f"{url}/healthz")
        except httpx.HTTPError:
            return
    said = f"{r.status_code} {dict(r.headers)} {r.text[:200]}"
    raise AssertionError(f"{url} answers after its server stopped: {said}")


def test_rules_check_says_valid_invalid_or_unreadable(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["rules", "check", str(DEFAULT_RULES)], env={"COLUMNS": "200"})
    rules = len(yaml.safe_load(DEFAULT_RULES.read_text())["rules"])
    assert ok.exit_code == 0 and f"valid, {rules} rules" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEFAULT_RULES.read_text().replace("level: 3", "level: 7", 1))
    bad = runner.invoke(cli, ["rules", "check", str(broken)], env={"COLUMNS": "200"})
    assert bad.exit_code == 1
    assert row(bad.stdout, "trafficking-opened", "actions.0.level")
    missing = runner.invoke(cli, ["rules", "check", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for args in (
        ["status"],
        ["import"],
        ["rules", "check"],
        ["rules", "dry-run"],
        ["replay"],
        ["demo"],
        ["dlq", "list"],
    ):
        result = runner.invoke(cli, [*args, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Usage" in result.stdout, args
