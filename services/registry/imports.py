"""registry's CSV import: a national placement export, in chunks of rows (what record_departure
does row by row, a few database commands a chunk; rows a chunk cannot decide alone go through
record_departure); good rows kept, each bad row reported with its line and reason."""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from services.registry import domain, service, store
from services.registry.models import DepartureIn
from shared.errors import Conflict, field_errors
from shared.mongo import Doc
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


CHUNK = 500  # rows a chunk: each chunk costs about seven database commands, not seven a row


@dataclass
class _Row:
    """A valid row of a chunk, as far as the chunk's queries have taken it."""

    line: int
    data: DepartureIn
    nik_hash: str | None
    passport_hash: str | None
    worker_id: str = ""
    snapshot: Doc = field(default_factory=dict)
    slow: bool = False  # to record_departure, alone: the chunk's shared answers do not decide it


async def import_csv(
    *,
    rt: Runtime,
    text: str,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
) -> ImportResult:
    """Import a national placement export: keep good rows, report each bad one by line and reason.

    The rows go in chunks: the same documents, events and report as recording them one by one
    with record_departure, in a handful of database commands a chunk."""
    result = ImportResult()
    header, rows = read_csv(text)
    missing = domain.missing_columns(header)
    if missing:
        result.errors.append({"line": 1, "reason": f"missing columns: {', '.join(missing)}"})
        return result
    batch: list[tuple[int, dict[str, str | None]]] = []
    for line, row in rows:
        batch.append((line, row))
        if len(batch) >= max(chunk, 1):
            await _import_chunk(rt, batch, result, progress)
            batch = []
    if batch:
        await _import_chunk(rt, batch, result, progress)
    log.info(
        "import finished: %d rows, %d created, %d updated, %d unchanged, %d rejected",
        result.rows,
        result.created,
        result.updated,
        result.unchanged,
        len(result.errors),
    )
    return result


def _validate(row: dict[str, str | None]) -> DepartureIn:
    if None in row:
        raise ValueError("more values than columns")
    return DepartureIn.model_validate(domain.row_to_input(row))


def _reason(exc: Exception) -> str:
    """A rejected row's reason, as the import reports it."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{e['field'] or 'row'}: {e['reason']}" for e in field_errors(exc))
    if isinstance(exc, Conflict):
        return exc.reason
    return str(exc)


async def _import_chunk(
    rt: Runtime,
    batch: list[tuple[int, dict[str, str | None]]],
    result: ImportResult,
    progress: Callable[[int], None] | None,
) -> None:
    """Import one chunk of rows; outcomes and errors are reported in line order."""
    outcomes: dict[int, str | Exception] = {}
    valid: list[_Row] = []
    for line, row in batch:
        try:
            data = _validate(row)
        except (ValidationError, ValueError) as exc:
            outcomes[line] = exc
        else:
            valid.append(_Row(line, data, *service.worker_hashes(rt, data)))
    await _fast(rt, valid, outcomes)
    for r in valid:  # what the chunk's answers did not decide: one by one, in line order
        if r.slow:
            try:
                _, outcomes[r.line] = await service.record_departure(rt=rt, data=r.data, upsert=True)
            except (Conflict, ValueError) as exc:
                outcomes[r.line] = exc
    for line, _ in batch:
        result.rows += 1
        outcome = outcomes[line]
        if isinstance(outcome, Exception):
            result.errors.append({"line": line, "reason": _reason(outcome)})
        else:
            setattr(result, outcome, getattr(result, outcome) + 1)
    if progress:
        progress(len(batch))


async def _fast(rt: Runtime, valid: list[_Row], outcomes: dict[int, str | Exception]) -> None:
    """Record the chunk's rows that the chunk's shared queries decide: workers looked up by hash
    in two queries, workers, employers and agencies upserted in one bulk write each, departures
    read in one query and the new ones inserted with their outbox entries in one write. Rows
    left `slow` (a worker twice in the chunk, an identity held by two workers, a departure that
    exists and changes, a duplicate key) are not written here."""
    if not valid:
        return
    db = rt.db
    by_nik: dict[str, list[Doc]] = defaultdict(list)
    by_passport: dict[str, list[Doc]] = defaultdict(list)
    niks = sorted({r.nik_hash for r in valid if r.nik_hash})
    passports = sorted({r.passport_hash for r in valid if r.passport_hash})
    for doc in await store.workers_by_hashes(db, "nik_hash", niks):
        by_nik[doc["nik_hash"]].append(doc)
    for doc in await store.workers_by_hashes(db, "passport_hash", passports):
        by_passport[doc["passport_hash"]].append(doc)
    for r in valid:
        on_nik = by_nik.get(r.nik_hash or "", [])
        on_passport = by_passport.get(r.passport_hash or "", [])
        if len(on_nik) > 1 or len(on_passport) > 1:
            r.slow = True  # two workers hold one number: which one find_one meets is not ours to say
        elif on_nik and on_passport and on_nik[0]["_id"] != on_passport[0]["_id"]:
            r.slow = True  # the NIK's worker and the passport's are two workers
        found = on_nik[0] if on_nik else on_passport[0] if on_passport else None
        r.worker_id = service.worker_id_of(found, r.nik_hash, r.passport_hash)
    # A worker (by id or by either number) met twice in the chunk: each of those rows depends on
    # the one before, so they all go one by one.
    seen = Counter(k for r in valid for k in _keys(r))
    for r in valid:
        if any(seen[k] > 1 for k in _keys(r)):
            r.slow = True

    fast = [r for r in valid if not r.slow]
    now = rt.clock.now()
    identities = [service.worker_identity(rt, r.data, r.nik_hash, r.passport_hash, now) for r in fast]
    clashed = await store.upsert_workers(
        db, [(r.worker_id, i, now) for r, i in zip(fast, identities, strict=True)]
    )
    # Parties: every valid row's, the first row naming one gives its fields (as one by one).
    named: dict[str, dict[str, Doc]] = {store.EMPLOYERS: {}, store.AGENCIES: {}}
    employer_of: dict[int, str | None] = {}
    for r in valid:
        employer_of[r.line], parties = service.parties(r.data)
        for collection, party_id, on_insert in parties:
            named[collection].setdefault(party_id, on_insert)
    for collection, parties_named in named.items():
        await store.ensure_parties(db, collection, parties_named)

    ready: list[_Row] = []
    for k, (r, identity) in enumerate(zip(fast, identities, strict=True)):
        if k in clashed:
            r.slow = True
            continue
        r.snapshot = service.departure_snapshot(
            r.data, worker_id=r.worker_id, identity=identity, employer_id=employer_of[r.line]
        )
        ready.append(r)
    ids = [domain.departure_id_for(r.worker_id, r.data.departure_date) for r in ready]
    current = await store.departures_by_ids(db, ids)
    new: list[tuple[_Row, str, Doc]] = []
    for r, departure_id in zip(ready, ids, strict=True):
        existing = current.get(departure_id)
        if existing is None:
            _, stored = service.new_departure(rt, departure_id, r.snapshot, now)
            new.append((r, departure_id, stored))
        elif service.change_to(existing, r.snapshot) is None:
            outcomes[r.line] = "unchanged"
        else:
            r.slow = True  # an update: record_departure applies it at the departure's version
    there = await store.insert_departures(db, [stored for _, _, stored in new])
    for k, (r, _, _) in enumerate(new):
        if k in there:
            r.slow = True  # inserted meanwhile by another writer: an update, one by one
        else:
            outcomes[r.line] = "created"
    rt.relay.wake(*(departure_id for k, (_, departure_id, _) in enumerate(new) if k not in there))


def _keys(r: _Row) -> list[str]:
    keys = [f"w:{r.worker_id}"]
    if r.nik_hash:
        keys.append(f"n:{r.nik_hash}")
    if r.passport_hash:
        keys.append(f"p:{r.passport_hash}")
    return keys
