"""escalation's HTTP side on the real broker and database: rule sets and the dry run."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli import app as cli
from services.escalation.app import create_app
from services.escalation.engine import DEFAULT_RULES
from shared.clock import ManualClock
from shared.events.casework import CaseAcknowledged, CaseStatus
from shared.settings import Settings
from shared.vocab import Severity
from tests.support.escalation import OFFICER, SUPERVISOR, T0, case_opened, envelope, send
from tests.support.harness import running

pytestmark = pytest.mark.integration

DEFAULT = DEFAULT_RULES.read_text()
# The candidate: critical cases must be acknowledged within 30 minutes instead of 1 hour.
FASTER = DEFAULT.replace(
    "after: 1h\n          actions:\n            - {do: escalate, level: 1, reason: critical",
    "after: 30m\n          actions:\n            - {do: escalate, level: 1, reason: critical",
    1,
)


async def test_rules_are_listed_loaded_whole_or_refused_whole(settings: Settings) -> None:
    app = create_app(settings, ManualClock(T0), timer_loop=False)
    async with running(app) as http:
        r = await http.get("/v1/rules", headers=OFFICER)
        assert r.status_code == 200
        assert r.json()["version"] == 1 and r.json()["loaded_by"] == "default"
        assert "critical-ack-1h" in {x["id"] for x in r.json()["rules"]}

        assert (await http.get("/v1/rules")).status_code == 401
        r = await http.post("/v1/rules", json={"yaml": FASTER}, headers=OFFICER)
        assert r.status_code == 403

        broken = FASTER.replace("level: 3", "level: 7", 1)
        r = await http.post("/v1/rules", json={"yaml": broken}, headers=SUPERVISOR)
        assert r.status_code == 422
        [err] = r.json()["errors"]
        assert err["field"] == "rules.trafficking-opened.actions.0.level"
        assert (await http.get("/v1/rules", headers=OFFICER)).json()["version"] == 1  # still in force

        r = await http.post("/v1/rules", json={"yaml": FASTER, "note": "30 minutes"}, headers=SUPERVISOR)
        assert r.status_code == 201, r.text
        assert r.json()["version"] == 2 and r.json()["loaded_by"] == "supervisor-dewi"
        assert app.state.escalation.version == 2
        versions = (await http.get("/v1/rules/versions", headers=OFFICER)).json()
        assert [v["version"] for v in versions] == [2, 1]


async def test_dry_run_of_a_changed_rule_file_reports_the_difference(
    settings: Settings, tmp_path: Path
) -> None:
    # A recorded stream: two critical cases, one acknowledged at 45 minutes, one never.
    slow, ignored = case_opened(severity=Severity.CRITICAL), case_opened(severity=Severity.CRITICAL)
    ack = CaseAcknowledged(
        case_id=slow.case_id,
        status=CaseStatus.IN_PROGRESS,
        actor="officer-ani",
        at=T0 + timedelta(minutes=45),
    )
    app = create_app(settings, ManualClock(T0), timer_loop=False)
    async with running(app) as http:  # creates the topics; the timers never run: nothing fires live
        await send(
            settings,
            (slow, envelope(slow, time=T0, key=slow.case_id), slow.case_id),
            (ignored, envelope(ignored, time=T0, key=ignored.case_id), ignored.case_id),
            (ack, envelope(ack, time=ack.at, key=ack.case_id), ack.case_id),
        )
        body = {"yaml": FASTER, "from_offset": 0, "until": (T0 + timedelta(hours=1, minutes=15)).isoformat()}
        r = await http.post("/v1/rules/dry-run", json=body, headers=SUPERVISOR)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["events"] == 3 and report["live_version"] == 1
        # the candidate escalates the case acknowledged at 45 minutes; the live rules do not
        assert [(f["rule_id"], f["subject"]) for f in report["only_candidate"]] == [
            ("critical-ack-1h", f"case:{slow.case_id}")
        ]
        assert report["only_live"] == []
        # the ignored case escalates under both, 30 minutes earlier under the candidate
        [changed] = report["changed"]
        assert changed["candidate"]["subject"] == f"case:{ignored.case_id}"
        assert changed["candidate"]["at"] < changed["live"]["at"]
        assert (await http.post("/v1/rules/dry-run", json=body, headers=OFFICER)).status_code == 403
        bad = await http.post("/v1/rules/dry-run", json={"yaml": FASTER}, headers=SUPERVISOR)
        assert bad.status_code == 422

    # `lindungi rules dry-run` gives the same answer (live rules from a file here; by default,
    # from the database), with endpoints from the environment, as it would from a shell.
    candidate = tmp_path / "faster.yaml"
    candidate.write_text(FASTER)
    live = tmp_path / "default.yaml"
    live.write_text(DEFAULT)
    env = {
        "LINDUNGI_NAMESPACE": settings.namespace,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGODB_URI": settings.mongodb_uri,
        "COLUMNS": "200",
    }
    until = (T0 + timedelta(hours=1, minutes=15)).isoformat()
    args = ["rules", "dry-run", str(candidate), "--from", T0.isoformat(), "--until", until]
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--live", str(live), "--json"], env=env)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["only_candidate"] == report["only_candidate"] and got["events"] == 3
    # the rules in force (version 1, the defaults, in escalation's database) by default; a table
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "3 events" in result.stdout and "candidate fires 2, live 1" in result.stdout
    assert re.search(rf"only candidate\s*│\s*critical-ack-1h\s*│\s*case:{slow.case_id}", result.stdout)
    # an invalid candidate: exit 1, each problem named; --from neither offset nor time: usage error
    broken = tmp_path / "broken.yaml"
    broken.write_text(FASTER.replace("level: 3", "level: 7", 1))
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["rules", "dry-run", str(broken), "--from", "0"], env=env
    )
    assert result.exit_code == 1 and "trafficking-opened" in result.stdout
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:3], "--from", "yesterday"], env=env)
    assert result.exit_code == 2
