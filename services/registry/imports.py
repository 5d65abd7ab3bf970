"""registry's CSV import: a national placement export, row by row through record_departure;
good rows kept, each bad row reported with its line and reason."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from services.registry import domain, service
from services.registry.models import DepartureIn
from shared.errors import Conflict, field_errors
from shared.service import Runtime

log = logging.getLogger("lindungi.registry")


@dataclass
class ImportResult:
    """What an import did: counts per outcome, and each rejected row with its line and reason."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.errors),
            "errors": self.errors,
        }


def read_csv(text: str) -> tuple[list[str], Iterable[tuple[int, dict[str, str | None]]]]:
    """The header and (line number, row) pairs of a CSV export; the header is line 1."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = list(reader.fieldnames or [])

    def rows() -> Iterable[tuple[int, dict[str, str | None]]]:
        for row in reader:
            yield reader.line_num, row

    return header, rows()


async def import_csv(
    *, rt: Runtime, text: str, progress: Callable[[int], None] | None = None
) -> ImportResult:
    """Import a national placement export: keep good rows, report each bad one by line and reason."""
    result = ImportResult()
    header, rows = read_csv(text)
    missing = domain.missing_columns(header)
    if missing:
        result.errors.append({"line": 1, "reason": f"missing columns: {', '.join(missing)}"})
        return result
    for line, row in rows:
        result.rows += 1
        try:
            if None in row:
                raise ValueError("more values than columns")
            data = DepartureIn.model_validate(domain.row_to_input(row))
            _, outcome = await service.record_departure(rt=rt, data=data, upsert=True)
        except ValidationError as exc:
            reason = "; ".join(f"{e['field'] or 'row'}: {e['reason']}" for e in field_errors(exc))
            result.errors.append({"line": line, "reason": reason})
        except Conflict as exc:
            result.errors.append({"line": line, "reason": exc.reason})
        except ValueError as exc:
            result.errors.append({"line": line, "reason": str(exc)})
        else:
            setattr(result, outcome, getattr(result, outcome) + 1)
        if progress:
            progress(1)
    log.info(
        "import finished: %d rows, %d created, %d updated, %d unchanged, %d rejected",
        result.rows,
        result.created,
        result.updated,
        result.unchanged,
        len(result.errors),
    )
    return result
