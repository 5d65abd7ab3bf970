"""`lindungi pii`: re-encrypt stored personal data to the current key, count ciphertexts per key,
and export everything held about one worker (by NIK) across services as one JSON document.

A rotation, without downtime:
1. give every replica the keyring with the new key current (LINDUNGI_PII_KEYS with the old and
   the new key, LINDUNGI_PII_CURRENT_KEY=new) and restart them one by one: new values are
   encrypted under the new key, old ones still decrypt;
2. `lindungi pii rotate` (same settings) re-encrypts every stored value that is not under the
   current key, document by document, each field compare-and-set (a value a service changed
   meanwhile is left to the service, which wrote it under the current key);
3. `lindungi pii status` shows no ciphertext under the old key; remove it from the keyring.

Resumable: progress is recorded in the operators' database (`lindungi_ops.pii_rotations`, one
document per collection: the target key and the last `_id` done) every batch; a rerun towards
the same key goes on from there, and a finished collection is scanned again from the start
(which then writes nothing). Documents are visited in `_id` order by one cursor per run.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from services.casework import store as casework_store
from services.intake import store as intake_store
from services.registry import service as registry_service
from services.registry import store as registry_store
from services.repatriation import store as repatriation_store
from shared import audit
from shared.auth import Principal
from shared.mongo import HIDDEN, Doc, connect
from shared.pii import Vault, key_id_of, vault_for
from shared.service import Runtime
from shared.settings import Settings, refuse_unsafe

ROTATIONS = "pii_rotations"
LEGACY = "(before key ids)"

# Every service that stores ciphertexts, with where (from its store module).
SOURCES: dict[str, list[tuple[str, str, str]]] = {
    "registry": registry_store.ENCRYPTED,
    "intake": intake_store.ENCRYPTED,
}

Progress_ = Callable[[str, int, int], None]  # (database.collection, documents done, total)


@dataclass
class Tally:
    """What a rotation did to one collection."""

    scanned: int = 0
    rotated: int = 0  # values re-encrypted
    current: int = 0  # values already under the current key
    resumed_after: str | None = None


def _get(doc: Doc, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)  # type: ignore[assignment]
    return doc


def _collections() -> Iterable[tuple[str, str, list[tuple[str, str]]]]:
    """(service, collection, [(field path, kind)]) of every stored ciphertext."""
    for service, fields in SOURCES.items():
        by_collection: dict[str, list[tuple[str, str]]] = {}
        for collection, path, kind in fields:
            by_collection.setdefault(collection, []).append((path, kind))
        for collection, paths in by_collection.items():
            yield service, collection, paths


async def _rotate_doc(
    db: AsyncDatabase[Doc], collection: str, doc: Doc, paths: list[tuple[str, str]], vault: Vault, t: Tally
) -> None:
    for _ in range(5):
        sets, expected = {}, {}
        for path, kind in paths:
            value = _get(doc, path)
            if not isinstance(value, str) or not value:
                continue
            if vault.is_current(value):
                t.current += 1
                continue
            sets[path], expected[path] = vault.reencrypt(kind, value), value
        if not sets:
            return
        result = await db[collection].update_one({"_id": doc["_id"], **expected}, {"$set": sets})
        if result.matched_count == 1:
            t.rotated += len(sets)
            return
        # changed by a service meanwhile: look again (what it wrote is under the current key)
        fresh = await db[collection].find_one({"_id": doc["_id"]})
        if fresh is None:
            return
        doc = fresh
    raise RuntimeError(f"{collection} {doc['_id']} kept changing during rotation")


async def rotate(
    settings: Settings, *, batch: int = 200, progress: Progress_ | None = None
) -> dict[str, Tally]:
    """Re-encrypt every stored ciphertext that is not under the current key (resumable)."""
    refuse_unsafe(settings)
    vault = vault_for(settings)
    client = connect(settings)
    ledger = client[settings.database("ops")][ROTATIONS]
    out: dict[str, Tally] = {}
    try:
        for service, collection, paths in _collections():
            db = client[settings.database(service)]
            name = f"{service}.{collection}"
            tally = out[name] = Tally()
            mark = await ledger.find_one({"_id": name})
            after = mark["last_id"] if mark and mark.get("key") == vault.current else None
            tally.resumed_after = after
            total = await db[collection].count_documents({"_id": {"$gt": after}} if after else {})
            cursor = db[collection].find({"_id": {"$gt": after}} if after else {}).sort("_id", 1)
            async for doc in cursor:
                await _rotate_doc(db, collection, doc, paths, vault, tally)
                tally.scanned += 1
                if tally.scanned % batch == 0:
                    await ledger.update_one(
                        {"_id": name},
                        {"$set": {"key": vault.current, "last_id": doc["_id"], "at": datetime.now(UTC)}},
                        upsert=True,
                    )
                if progress:
                    progress(name, tally.scanned, total)
            await ledger.delete_one({"_id": name})  # done: the next run starts from the beginning
    finally:
        await client.close()
    return out


async def census(settings: Settings) -> dict[str, dict[str, int]]:
    """How many stored ciphertexts each key id holds, per collection."""
    client = connect(settings)
    out: dict[str, dict[str, int]] = {}
    try:
        for service, collection, paths in _collections():
            counts = out.setdefault(f"{service}.{collection}", {})
            async for doc in client[settings.database(service)][collection].find({}):
                for path, _kind in paths:
                    value = _get(doc, path)
                    if isinstance(value, str) and value:
                        key = key_id_of(value) or LEGACY
                        counts[key] = counts.get(key, 0) + 1
    finally:
        await client.close()
    return out


def _plain(doc: Doc) -> Doc:
    """A stored document as an export shows it: its id named, no bookkeeping."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    return {"id": doc["_id"], **out}


def _clear(vault: Vault, doc: Doc | None, fields: list[tuple[str, str, str]]) -> Doc | None:
    """A copy with the ciphertexts at (path, kind, name) replaced by their clear values."""
    if doc is None:
        return None
    out = dict(doc)
    for path, kind, name in fields:
        token = _get(doc, path)
        head, _, last = path.rpartition(".")
        target = out
        if head:
            if not isinstance(out.get(head), dict):
                continue
            target = out[head] = dict(out[head])
        target.pop(last, None)
        if isinstance(token, str) and token:
            target[name] = vault.decrypt(kind, token)
    return out


REGISTRY_CLEAR = [
    ("nik_enc", "nik", "nik"),
    ("passport_enc", "passport", "passport_number"),
    ("phone_enc", "phone", "phone"),
    ("next_of_kin.phone", "phone", "phone"),
]
INCIDENT_CLEAR = [
    ("worker.nik_enc", "nik", "nik"),
    ("worker.passport_enc", "passport", "passport_number"),
    ("worker.phone_enc", "phone", "phone"),
]


async def _record_export(
    reg: AsyncDatabase[Doc],
    inc: AsyncDatabase[Doc],
    worker_id: str,
    *,
    operator: str,
    purpose: str,
    now: datetime,
) -> list[Doc]:
    """Record the export in registry's read audit; return the worker's reads recorded in registry
    and intake (this one included)."""
    actor = Principal(id=f"cli:{operator}", name=operator, roles=frozenset({"administrator"}))
    await audit.record(
        reg,
        service="registry",
        worker_id=worker_id,
        actor=actor,
        fields=["nik", "passport_number", "phone", "next_of_kin.phone", "narrative"],
        purpose=purpose,
        via="lindungi pii export",
        at=now,
    )
    reads: list[Doc] = []
    for db in (reg, inc):
        reads += [read.model_dump(mode="json") for read in await audit.reads_of(db, worker_id, limit=10_000)]
    return reads


async def export_worker(settings: Settings, nik: str, *, operator: str, purpose: str) -> Doc:
    """Everything held about one worker, by NIK: registry, intake, casework, repatriation, reads.

    The export is itself a read of identifying data: it is recorded in registry's read audit
    (and so appears in the next export).
    """
    refuse_unsafe(settings)
    vault = vault_for(settings)
    nik_hash = vault.lookup_hash("nik", nik)
    client = connect(settings)
    try:
        reg, inc = client[settings.database("registry")], client[settings.database("intake")]
        cw, rep = client[settings.database("casework")], client[settings.database("repatriation")]
        worker = await registry_store.worker_by_hash(reg, nik_hash=nik_hash, passport_hash=None)
        worker_id = worker["_id"] if worker else None
        departures = await registry_store.departures_of(reg, worker_id) if worker_id else []
        wanted: list[Doc] = [{"worker.nik_hash": nik_hash}]
        if worker_id:
            wanted.append({"match.worker_id": worker_id})
        incidents = await inc[intake_store.INCIDENTS].find({"$or": wanted}, HIDDEN).sort("_id").to_list()
        keys = sorted({worker_id or "", nik_hash[:32], *(i["worker_key"] for i in incidents)} - {""})
        cases = await cw[casework_store.CASES].find({"worker_keys": {"$in": keys}}, HIDDEN).to_list()
        workflows = (
            await rep[repatriation_store.WORKFLOWS].find({"worker_id": worker_id}, HIDDEN).to_list()
            if worker_id
            else []
        )
        evacuations = (
            await rep[repatriation_store.EVACUEES].find({"worker_id": worker_id}, HIDDEN).to_list()
            if worker_id
            else []
        )
        now = datetime.now(UTC)
        reads = (
            await _record_export(reg, inc, worker_id, operator=operator, purpose=purpose, now=now)
            if worker_id
            else []
        )
        return {
            "nik": nik,
            "worker_id": worker_id,
            "exported_at": now.isoformat(),
            "exported_by": operator,
            "purpose": purpose,
            "registry": {
                "worker": _plain(_clear(vault, worker, REGISTRY_CLEAR) or {}) if worker else None,
                "departures": [_plain(d) for d in departures],
            },
            "intake": {"incidents": [_plain(_clear(vault, i, INCIDENT_CLEAR) or {}) for i in incidents]},
            "casework": {"cases": [_plain(c) for c in cases]},
            "repatriation": {
                "workflows": [_plain(w) for w in workflows],
                "evacuations": [_plain(e) for e in evacuations],
            },
            "read_audit": sorted(reads, key=lambda r: r["at"]),
        }
    finally:
        await client.close()


async def retention(settings: Settings, *, days: float) -> registry_service.Retention:
    """One run of registry's retention job (the services run it daily by themselves)."""
    rt = Runtime("registry", settings=settings)  # refuses unsafe settings; nothing started
    try:  # a running registry's relay publishes the anonymised versions
        return await registry_service.anonymise_ended(rt=rt, older_than=timedelta(days=days))
    finally:
        await rt.mongo.close()


app = typer.Typer(
    help="Personal data keys: re-encrypt to the current key, count per key.", no_args_is_help=True
)
out = Console()


@app.command("rotate")
def rotate_command(
    batch: int = typer.Option(200, min=1, help="documents between two recorded checkpoints"),
) -> None:
    """Re-encrypt stored NIK, passport and phone numbers to the current key (resumable)."""
    settings = Settings()
    vault = vault_for(settings)
    out.print(f"re-encrypting to key {vault.current!r} (configured: {', '.join(vault.key_ids)})")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out) as bar:
        tasks: dict[str, Any] = {}

        def advance(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        tallies = asyncio.run(rotate(settings, batch=batch, progress=advance))
    table = Table("collection", "documents", "re-encrypted", "already current", "resumed after")
    for name, t in tallies.items():
        table.add_row(name, str(t.scanned), str(t.rotated), str(t.current), t.resumed_after or "-")
    out.print(table)


@app.command("status")
def status_command() -> None:
    """Stored ciphertexts per key id: after a rotation, only the current key's remain."""
    settings = Settings()
    current = vault_for(settings).current
    table = Table("collection", "key", "values")
    for name, counts in asyncio.run(census(settings)).items():
        for key, n in sorted(counts.items()):
            table.add_row(name, key + (" (current)" if key == current else ""), str(n))
    out.print(table)


@app.command("export")
def export_command(
    nik: str = typer.Argument(help="the worker's NIK"),
    purpose: str = typer.Option(..., help="why (recorded in the read audit), e.g. a data subject's request"),
    to: str = typer.Option("-", "--out", help="a file to write, or - for standard output"),
) -> None:
    """Everything held about one worker across services, as one JSON document (audited)."""
    doc = asyncio.run(export_worker(Settings(), nik, operator=getpass.getuser(), purpose=purpose))
    text = json.dumps(doc, default=str, indent=2, ensure_ascii=False)
    if to == "-":
        print(text)
    else:
        with open(to, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        out.print(f"wrote {to}: worker {doc['worker_id'] or '(not in the registry)'}")


@app.command("retention")
def retention_command(
    days: float = typer.Option(None, help="age in days (default: LINDUNGI_RETENTION_DAYS)"),
) -> None:
    """Anonymise departures that ended long ago, and workers left with none, now; say what was done."""
    settings = Settings()
    report = asyncio.run(retention(settings, days=days if days is not None else settings.retention_days))
    out.print(str(report))
