"""`lindungi rules check FILE` and `lindungi rules dry-run FILE --from …`: escalation rules offline.

`check` validates a rule file whole, as escalation would on load. `dry-run` replays the events
stored in Kafka (cases, incidents, departures, repatriations) from an offset or a time through
the candidate file and through the rules in force (escalation's database, or --live FILE), and
shows what each would fire and the difference; nothing is stored or sent.
Exit status: 0 valid (check) or done (dry-run); 1 the rule file is invalid; 2 a file could not be
read, or no rules are in force to compare with.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from services.escalation import dryrun, ruleset, store
from shared.mongo import connect
from shared.settings import Settings

app = typer.Typer(help="Escalation rules: check a file, dry-run it over stored events.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"cannot read {path}: {type(exc).__name__}")
        raise typer.Exit(2) from None


def _load(path: Path, text: str) -> ruleset.RuleSet:
    try:
        return ruleset.load_rules(text)
    except ruleset.InvalidRules as exc:
        table = Table("rule", "field", "reason", title=f"{path}: invalid, refused whole")
        for error in exc.errors:
            table.add_row(error.rule or "-", error.field, error.reason)
        out.print(table)
        raise typer.Exit(1) from None


@app.command("check")
def check(file: Path = typer.Argument(help="rule file (YAML)")) -> None:
    """Validate a rule file whole, naming each problem by rule, field and reason."""
    rules = _load(file, _read(file))
    out.print(f"{file}: valid, {len(rules.rules)} rules: {', '.join(r.id for r in rules.rules)}")


def _start(value: str) -> tuple[int | None, datetime | None]:
    """--from: an offset (every partition) or an ISO time."""
    if value.isdigit():
        return int(value), None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("an offset (e.g. 0) or an ISO time with its offset") from None
    if at.tzinfo is None:
        raise typer.BadParameter("give the time's offset, e.g. 2026-11-20T00:00:00+07:00")
    return None, at


async def _live(settings: Settings) -> ruleset.RuleSet | None:
    client = connect(settings)
    try:
        doc = await store.latest_ruleset(client[settings.database("escalation")])
    finally:
        await client.close()
    return ruleset.load_rules(doc["yaml"]) if doc is not None else None


def _firing_rows(table: Table, label: str, firings: list[dict[str, Any]]) -> None:
    for firing in firings:
        table.add_row(label, firing.get("rule_id", ""), firing.get("subject", ""), str(firing.get("at", "")))


@app.command("dry-run")
def dry_run(
    file: Path = typer.Argument(help="candidate rule file (YAML)"),
    from_: str = typer.Option(..., "--from", help="offset in every partition (e.g. 0) or ISO time"),
    until: datetime | None = typer.Option(None, help="simulate up to this ISO time"),
    live: Path | None = typer.Option(None, help="compare with this file instead of the rules in force"),
    as_json: bool = typer.Option(False, "--json", help="print the whole report as JSON"),
) -> None:
    """What the candidate rules would fire over stored events, against the rules in force."""
    from_offset, from_time = _start(from_)
    candidate = _load(file, _read(file))
    settings = Settings()
    if live is not None:
        current = _load(live, _read(live))
    else:
        found = asyncio.run(_live(settings))
        if found is None:
            err.print("no rule set stored in escalation's database; give --live FILE")
            raise typer.Exit(2)
        current = found
    events = asyncio.run(
        dryrun.read_events(settings, from_offset=from_offset, from_time=from_time, until=until)
    )
    report = dryrun.report(candidate, current, events, until=until)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    out.print(
        f"{report['events']} events ({report['first_event_at'] or '-'} … {report['last_event_at'] or '-'}): "
        f"candidate fires {report['candidate_fired']}, live {report['live_fired']}, the same {report['same']}"
    )
    table = Table("", "rule", "subject", "at", title="difference")
    _firing_rows(table, "only candidate", report["only_candidate"])
    _firing_rows(table, "only live", report["only_live"])
    for change in report["changed"]:
        _firing_rows(table, "changed: candidate", [change["candidate"]])
        _firing_rows(table, "changed: live", [change["live"]])
    out.print(table)
