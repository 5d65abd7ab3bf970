"""`lindungi import FILE`: a national placement system export into registry's database.

Writes straight into registry's database (MONGODB_URI, LINDUNGI_NAMESPACE), with a progress bar.
The DepartureRecorded events of the import wait in the departures' outbox and go out through any
running registry replica's relay, so the import needs no broker. Bad rows are listed with their
line and reason (never their values). Exit status: 0 every row kept, 1 some rows rejected,
2 the file could not be read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.registry import imports, store
from shared.service import Runtime
from shared.settings import Settings

out = Console()
err = Console(stderr=True)


async def run(path: Path, text: str, settings: Settings) -> imports.ImportResult:
    """Import one file's text with a progress bar on the terminal (stderr)."""
    total = max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)
    rt = Runtime("registry", settings=settings)  # refuses unsafe settings; nothing started
    try:
        await store.ensure_indexes(rt.db)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task(path.name, total=total)
            return await imports.import_csv(rt=rt, text=text, progress=lambda n: bar.advance(task, n))
    finally:
        await rt.mongo.close()


def import_file(
    file: Path = typer.Argument(help="CSV export (UTF-8, header row); see docs/registry.md"),
) -> None:
    """Import a national placement system CSV export; list the rejected rows by line and reason."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"cannot read {file}: {type(exc).__name__}")
        raise typer.Exit(2) from None
    result = asyncio.run(run(file, text, Settings()))
    report = result.as_dict()
    out.print(
        f"{report['rows']} rows: {report['created']} created, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['rejected']} rejected"
    )
    if result.errors:
        table = Table("line", "reason", title="rejected rows")
        for error in result.errors:
            table.add_row(str(error["line"]), error["reason"])
        out.print(table)
        raise typer.Exit(1)
