"""Import a national placement system export: `python -m services.registry.importer FILE`.

Writes straight into registry's database (MONGODB_URI, LINDUNGI_NAMESPACE from the
environment), with a progress bar. The DepartureRecorded events of the import wait in the
departures' outbox and go out through any running registry replica's relay, so the import
needs no broker. Bad rows are listed with their line and reason (never their values).
Exit status: 0 all rows kept, 1 some rows rejected, 2 the file could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tqdm import tqdm

from services.registry import service, store
from shared.clock import SystemClock
from shared.mongo import connect
from shared.outbox import Outbox
from shared.pii import vault_for
from shared.settings import Settings, refuse_unsafe


async def run(path: Path, text: str, settings: Settings) -> service.ImportResult:
    """Import one file's text with a progress bar on the terminal."""
    refuse_unsafe(settings)
    total = max(sum(1 for line in text.splitlines() if line.strip()) - 1, 0)
    client = connect(settings)
    try:
        db = client[settings.database("registry")]
        await store.ensure_indexes(db)
        clock = SystemClock()
        deps = service.Deps(
            db=db,
            vault=vault_for(settings),
            outbox=Outbox(source="lindungi/registry", clock=clock),
            clock=clock,
        )
        with tqdm(total=total, unit="row", desc=path.name, file=sys.stderr) as bar:
            return await service.import_csv(deps=deps, text=text, progress=bar.update)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, import, print the summary and every bad row."""
    parser = argparse.ArgumentParser(description="Import a national placement system CSV export.")
    parser.add_argument("file", type=Path, help="CSV export (UTF-8, header row); see docs/registry.md")
    args = parser.parse_args(argv)
    try:
        text = args.file.read_text(encoding="utf-8")
        result = asyncio.run(run(args.file, text, Settings()))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {type(exc).__name__}", file=sys.stderr)
        return 2
    report = result.as_dict()
    print(
        f"{report['rows']} rows: {report['created']} created, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {report['rejected']} rejected"
    )
    for e in result.errors:
        print(f"  line {e['line']}: {e['reason']}")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
