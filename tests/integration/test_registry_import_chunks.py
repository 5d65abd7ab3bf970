"""registry's CSV import in chunks against recording the same rows one by one (record_departure,
as the import did before): the same report, documents and DepartureRecorded outbox entries,
in a few database commands a chunk instead of several a row."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest
from pydantic import ValidationError
from pymongo import AsyncMongoClient, monitoring

from bench.imports import export
from services.registry import domain, imports, service, store
from services.registry.models import DepartureIn
from shared.clock import ManualClock
from shared.errors import Conflict, field_errors
from shared.mongo import Doc
from shared.namespace import drop_namespace
from shared.outbox import OUTBOX
from shared.service import Runtime
from shared.settings import Settings

pytestmark = pytest.mark.integration

ROWS, CHUNK = 150, 40  # four chunks: the last one short


def line_of(i: int) -> int:
    return i + 2  # the header is line 1


def files() -> tuple[str, str]:
    """(an earlier import, the export): the export has a worker twice in one chunk (rows 5 and
    20, the second time with a new NIK: the same worker, found by passport) and across chunks
    (10 and 70), a bad NIK (60), a departure the earlier import recorded as
    is (30), one it recorded as registered that is now abroad (90), one that cannot go back (100)."""
    rows = list(csv.DictReader(io.StringIO(export(ROWS, seed=3))))
    for twice, first in ((20, 5), (70, 10)):
        for col in ("nik", "passport_number", "full_name", "date_of_birth", "sex"):
            rows[twice][col] = rows[first][col]
        assert rows[twice]["departure_date"] != rows[first]["departure_date"]
    rows[20]["nik"] = rows[21]["nik"][:10] + "999999"  # a new NIK: the worker is found by passport
    rows[60]["nik"] = "12345"
    rows[90]["status"] = "active_abroad"
    rows[100]["status"] = "registered"
    earlier = [dict(rows[30]), {**rows[90], "status": "registered"}, {**rows[100], "status": "active_abroad"}]
    return write(earlier), write(rows)


def write(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=domain.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def row_by_row(*, rt: Runtime, text: str) -> imports.ImportResult:
    """The import as it was: every row awaited through record_departure."""
    result = imports.ImportResult()
    _, rows = imports.read_csv(text)
    for line, row in rows:
        result.rows += 1
        try:
            data = DepartureIn.model_validate(domain.row_to_input(row))
            _, outcome = await service.record_departure(rt=rt, data=data, upsert=True)
        except ValidationError as exc:
            reason = "; ".join(f"{e['field'] or 'row'}: {e['reason']}" for e in field_errors(exc))
            result.errors.append({"line": line, "reason": reason})
        except Conflict as exc:
            result.errors.append({"line": line, "reason": exc.reason})
        else:
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in {"hello", "ismaster", "isMaster", "ping", "endSessions"}:
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def comparable(doc: Doc) -> Doc:
    """A document without what differs between two runs of the same writes: ciphertexts (fresh
    nonces) and envelope ids."""
    out = {k: v for k, v in doc.items() if not k.endswith("_enc")}
    if "next_of_kin" in out and out["next_of_kin"].get("phone"):
        out["next_of_kin"] = {**out["next_of_kin"], "phone": "(encrypted)"}
    if OUTBOX in out:
        out[OUTBOX] = [{**e, "envelope": {**e["envelope"], "id": "-"}} for e in out[OUTBOX]]
    return out


async def run(
    settings: Settings, do_import: Callable[..., Any]
) -> tuple[list[Doc], dict[str, list[Doc]], list[str]]:
    earlier, text = files()
    rt = Runtime("registry", settings=settings, clock=ManualClock())
    commands = Commands()
    await rt.mongo.close()
    rt.mongo = AsyncMongoClient(settings.mongodb_uri, tz_aware=True, tzinfo=UTC, event_listeners=[commands])
    rt.db = rt.mongo[settings.database("registry")]
    try:
        await store.ensure_indexes(rt.db)
        reports = [(await do_import(rt=rt, text=earlier)).as_dict()]
        commands.names.clear()
        reports.append((await do_import(rt=rt, text=text)).as_dict())
        sent = list(commands.names)
        reports.append((await do_import(rt=rt, text=text)).as_dict())  # the same file again
        stored = {
            name: [comparable(d) for d in await rt.db[name].find().sort("_id", 1).to_list()]
            for name in (store.WORKERS, store.DEPARTURES, store.EMPLOYERS, store.AGENCIES)
        }
    finally:
        await rt.mongo.close()
    return reports, stored, sent


async def test_chunked_import_records_what_row_by_row_does(settings: Settings) -> None:
    seen: list[int] = []

    def chunked(*, rt: Runtime, text: str) -> Any:
        return imports.import_csv(rt=rt, text=text, chunk=CHUNK, progress=seen.append)

    reference = settings.model_copy(update={"namespace": f"{settings.namespace[:-1]}r_"})
    try:
        expected, expected_docs, _ = await run(reference, row_by_row)
    finally:
        await drop_namespace(reference)
    reports, docs, sent = await run(settings, chunked)

    assert reports == expected
    first, again = reports[1], reports[2]
    assert (first["rows"], first["created"], first["updated"], first["unchanged"]) == (ROWS, 146, 1, 1)
    assert [e["line"] for e in first["errors"]] == [line_of(60), line_of(100)]
    assert first["errors"][0]["reason"].startswith("nik:")
    assert first["errors"][1]["reason"] == "a departure cannot go from active_abroad to registered"
    assert (again["created"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 148, 2)
    assert again["errors"] == first["errors"]
    assert seen[-4:] == [CHUNK, CHUNK, CHUNK, ROWS - 3 * CHUNK]  # progress by chunk, every row counted

    assert docs == expected_docs
    departures = docs[store.DEPARTURES]
    assert len(departures) == 149 and len(docs[store.WORKERS]) == 147
    # one DepartureRecorded waiting per version of each departure: the changed one has two
    changes = sorted(len(d[OUTBOX]) for d in departures)
    assert changes == [1] * 148 + [2]
    assert all(
        e["envelope"]["type"] == "lindungi.registry.departure.recorded.v1"
        for d in departures
        for e in d[OUTBOX]
    )
    # a few commands a chunk, not several a row (row by row: about 7 a row, over 1,000 here)
    assert len(sent) < ROWS, sent
