"""`lindungi replay SERVICE`: rebuild a service's read models from their topics, then switch over.

Reads the topics from the beginning into fresh collections, renames them in place of the live
ones, and applies what arrived meanwhile (shared/replay.py). Safe while the service runs.
escalation's counters are recounted under the rule set in force at each event's time; what its
firings counted is taken from the decisions it keeps, and nothing fires again
(services/escalation/recount.py).
Exit status: 0 rebuilt; 2 Kafka or the database did not answer.
"""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from services.readmodels import READ_MODELS
from shared.mongo import connect
from shared.replay import Report, rebuild
from shared.settings import Settings

out = Console()


async def _run(settings: Settings, service: str) -> list[tuple[str, Report]]:
    client = connect(settings)
    try:
        db = client[settings.database(service)]
        return [(m.topic_names, await rebuild(settings, db, m)) for m in READ_MODELS[service]]
    finally:
        await client.close()


def replay(
    service: str = typer.Argument(help=f"the service whose read models to rebuild: {', '.join(READ_MODELS)}"),
) -> None:
    """Rebuild a service's read models by replaying their topics from the beginning, then switch over."""
    if service not in READ_MODELS:
        raise typer.BadParameter(
            f"{service!r} has no read model rebuilt from topics; one of {', '.join(READ_MODELS)}"
        )
    settings = Settings()
    try:
        done = asyncio.run(_run(settings, service))
    except Exception as exc:
        out.print(f"[red]replay of {service} failed: {type(exc).__name__}: {exc}[/red]")
        raise typer.Exit(2) from None
    table = Table("topics", "events replayed", "caught up after the switch", "skipped", "documents now")
    for topics, r in done:
        docs = ", ".join(f"{c}: {n}" for c, n in (r.documents or {}).items())
        table.add_row(topics, str(r.events), str(r.caught_up), str(r.skipped), docs)
    out.print(table)
    for _, r in done:
        for what, n in r.settled.items():
            out.print(f"{what}: {n}")
