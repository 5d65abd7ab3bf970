"""`lindungi pii`: re-encrypt stored personal data to the current key, and count ciphertexts per key.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import typer
from pymongo.asynchronous.database import AsyncDatabase
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from services.intake import store as intake_store
from services.registry import store as registry_store
from shared.mongo import Doc, connect
from shared.pii import Vault, key_id_of, vault_for
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
            t = out[name] = Tally()
            mark = await ledger.find_one({"_id": name})
            after = mark["last_id"] if mark and mark.get("key") == vault.current else None
            t.resumed_after = after
            total = await db[collection].count_documents({"_id": {"$gt": after}} if after else {})
            cursor = db[collection].find({"_id": {"$gt": after}} if after else {}).sort("_id", 1)
            async for doc in cursor:
                await _rotate_doc(db, collection, doc, paths, vault, t)
                t.scanned += 1
                if t.scanned % batch == 0:
                    await ledger.update_one(
                        {"_id": name},
                        {"$set": {"key": vault.current, "last_id": doc["_id"], "at": datetime.now(UTC)}},
                        upsert=True,
                    )
                if progress:
                    progress(name, t.scanned, total)
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
