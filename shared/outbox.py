"""Transactional outbox without multi-document transactions.

The events a state change causes are stored in the same single-document write as the change
(field `_outbox`). A relay, in any replica, leases a document, publishes its events in order,
then pulls exactly those entries. A crash anywhere loses nothing: unpublished entries stay in
the document until a relay publishes them; a crash after publishing and before the pull
publishes again, with the same event id, which consumers drop as already applied.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.clock import Clock
from shared.envelope import Envelope, Event
from shared.mongo import Doc

log = logging.getLogger("lindungi.outbox")

OUTBOX = "_outbox"
PENDING = "_outbox_pending"
LEASE = "_outbox_lease"  # wall-clock seconds: leases are about processes, not domain time

Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]


class Outbox:
    """Makes outbox entries for one service and folds them into MongoDB writes."""

    def __init__(self, *, source: str, clock: Clock) -> None:
        self.source = source
        self.clock = clock

    def entry(self, event: Event, *, key: str, subject: str | None = None, id: str | None = None) -> Doc:
        """One event ready to be stored beside the state change that caused it."""
        env = Envelope.wrap(event, source=self.source, subject=subject or key, clock=self.clock, id=id)
        return {"topic": event.topic.name, "key": key, "envelope": env.model_dump(mode="json")}

    @staticmethod
    def on_insert(doc: Doc, entries: list[Doc]) -> Doc:
        """A new document that carries its events."""
        if entries:
            doc[OUTBOX] = entries
            doc[PENDING] = True
        return doc

    @staticmethod
    def on_update(update: Doc, entries: list[Doc]) -> Doc:
        """An update document that also appends the events it causes."""
        if not entries:
            return update
        out = {op: dict(fields) for op, fields in update.items()}
        out.setdefault("$push", {})[OUTBOX] = {"$each": entries}
        out.setdefault("$set", {})[PENDING] = True
        return out


class OutboxRelay:
    """Publishes and clears outbox entries of the given collections; safe in many replicas."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[Doc],
        collections: list[str],
        publish: Publish,
        owner: str,
        poll_seconds: float = 0.5,
        lease_seconds: float = 30.0,
        sweep_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.publish = publish
        self.owner = owner
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.sweep_seconds = sweep_seconds
        self._hints: set[Any] = set()
        self._sweep_due = 0.0  # monotonic time of the next full sweep; 0: sweep now
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0

    def wake(self, *doc_ids: Any) -> None:
        """Ask the relay to publish now: the documents named, or (no ids) whatever is pending.

        Naming the documents keeps the hot path on `_id` lookups; a full sweep (a filter on
        `_outbox_pending`, which FerretDB answers by scanning the collection) runs only every
        `sweep_seconds`, for what a crashed replica left behind.
        """
        if doc_ids:
            self._hints.update(doc_ids)
        else:
            self._sweep_due = 0.0
        self._wake.set()

    async def ensure_indexes(self) -> None:
        for name in self.collections:
            await self.db[name].create_index([(PENDING, 1)])

    async def drain(self) -> int:
        """Publish everything pending now (every document: a full sweep); return how many went out."""
        sent = 0
        for name in self.collections:
            while (doc := await self._lease(name, {})) is not None:
                sent += await self._send(name, doc)
        self.published += sent
        return sent

    async def drain_hinted(self) -> int:
        """Publish the pending events of the documents named by wake(); return how many went out."""
        hints, self._hints = self._hints, set()
        sent = 0
        for doc_id in hints:
            for name in self.collections:
                doc = await self._lease(name, {"_id": doc_id})
                if doc is not None:
                    sent += await self._send(name, doc)
        self.published += sent
        return sent

    async def _lease(self, name: str, where: Doc) -> Doc | None:
        now = time.time()
        return await self.db[name].find_one_and_update(
            {**where, PENDING: True, "$or": [{LEASE: {"$exists": False}}, {LEASE: {"$lt": now}}]},
            {"$set": {LEASE: now + self.lease_seconds, "_outbox_owner": self.owner}},
            return_document=ReturnDocument.AFTER,
        )

    async def _send(self, name: str, doc: Doc) -> int:
        coll = self.db[name]
        entries: list[Doc] = doc.get(OUTBOX) or []
        for item in entries:
            await self._publish(item)
        # $pullAll removes exactly the entries published; entries appended meanwhile stay.
        await coll.update_one({"_id": doc["_id"]}, {"$pullAll": {OUTBOX: entries}, "$unset": {LEASE: ""}})
        await coll.update_one({"_id": doc["_id"], OUTBOX: {"$size": 0}}, {"$set": {PENDING: False}})
        return len(entries)

    async def _publish(self, item: Doc) -> None:
        env: dict[str, Any] = item["envelope"]
        headers = {
            "content-type": "application/cloudevents+json",
            "ce_id": env["id"],
            "ce_type": env["type"],
        }
        body = json.dumps(env, separators=(",", ":")).encode()
        await self.publish(item["topic"], item["key"].encode(), body, headers)

    async def run(self) -> None:
        """Publish hinted documents on every wake-up and sweep everything every sweep interval."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                await self.drain_hinted()
                if loop.time() >= self._sweep_due:
                    self._sweep_due = loop.time() + self.sweep_seconds
                    await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(min(self.poll_seconds * 4, 5))
            if self._hints:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
