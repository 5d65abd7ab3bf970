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

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.aio import wait_set
from shared.clock import Clock
from shared.envelope import Envelope, Event
from shared.mongo import DUPLICATE_KEY, Doc, bulk_write_parts

log = logging.getLogger("lindungi.outbox")

OUTBOX = "_outbox"
PENDING = "_outbox_pending"
LEASE = "_outbox_lease"  # (older documents may still carry it; leases now live in LEASES)
LEASES = "_outbox_leases"  # one small document per document being published; wall-clock seconds

BATCH = 50  # documents a relay leases, reads, publishes and clears together

Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[None]]


class Outbox:
    """Makes outbox entries for one service and folds them into MongoDB writes."""

    def __init__(self, *, source: str, clock: Clock) -> None:
        self.source = source
        self.service = source.removeprefix("lindungi/")
        self.clock = clock

    def entry(self, event: Event, *, key: str, subject: str | None = None, id: str | None = None) -> Doc:
        """One event ready to be stored beside the state change that caused it.

        Only a service the event type names in `sent_by` may publish it: the event map
        (docs/events.md, the AsyncAPI document) is read from those declarations.
        """
        if self.service not in event.sent_by:
            raise ValueError(
                f"{self.service} publishes {event.type}, which declares sent_by={event.sent_by}: "
                "name it in the event's @event_type(sent_by=...)"
            )
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
    """Publishes and clears outbox entries of the given collections; safe in many replicas.

    The hot path works by `_id` (served by the primary key on MongoDB and on the local FerretDB
    alike): a write names its document (wake(doc_id)), the relay claims it by inserting a lease
    document (insert is the claim; an expired lease may be taken over), reads and writes it by
    `_id` only. Documents go BATCH at a time: one unordered insert of their leases, one read,
    their entries published side by side (each document's in order: events of one document
    keep their order, events of different documents never had one), one bulk write clearing
    them. A full sweep (`_outbox_pending: true`) runs at start and every `sweep_seconds`, for
    what a crashed replica or a write that named nothing left behind.
    """

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
        self._hints: dict[str | None, set[Any]] = {}  # collection (None: any of them) -> named ids
        self._sweep_due = 0.0  # loop time of the next full sweep; 0: at the next turn
        self._wake = asyncio.Event()
        self._stopping = False
        self._held: set[str] = set()  # leases this relay holds, or is inserting (see release)
        self.published = 0

    def wake(self, *doc_ids: Any, collection: str | None = None) -> None:
        """Ask the relay to publish now: the documents named, or (no ids) whatever is pending.

        A relay of several collections looks for named documents in the one given (in each when
        none is: a lease, a read and a clear per collection).
        """
        if collection is not None and collection not in self.collections:
            raise ValueError(f"this relay publishes {self.collections}, not {collection}")
        if doc_ids:
            self._hints.setdefault(collection, set()).update(doc_ids)
        else:
            self._sweep_due = 0.0
        self._wake.set()

    async def ensure_indexes(self) -> None:
        for name in self.collections:
            await self.db[name].create_index([(PENDING, 1)])

    async def waiting(self) -> tuple[int, str | None]:
        """How many entries wait to be published, and the oldest one's envelope time (ISO), if any."""
        count, oldest = 0, None
        for name in self.collections:
            async for doc in self.db[name].find({PENDING: True}, {OUTBOX: 1}):
                for item in doc.get(OUTBOX) or []:
                    count += 1
                    at = item.get("envelope", {}).get("time")
                    if at is not None and (oldest is None or at < oldest):
                        oldest = at
        return count, oldest

    async def drain(self) -> int:
        """Publish everything pending now (a full sweep); return how many events went out."""
        sent = 0
        for name in self.collections:
            while True:
                batch = await self.db[name].find({PENDING: True}, {"_id": 1}).limit(200).to_list()
                published, leased = await self._publish_ids(name, [d["_id"] for d in batch])
                sent += published
                if not leased:
                    break
        self.published += sent
        return sent

    async def drain_hinted(self) -> int:
        """Publish the documents named by wake(); return how many events went out."""
        hints, self._hints = self._hints, {}
        anywhere = hints.get(None, set())
        sent = 0
        for name in self.collections:
            if ids := list(anywhere | hints.get(name, set())):
                sent += (await self._publish_ids(name, ids))[0]
        self.published += sent
        return sent

    async def _publish_ids(self, name: str, ids: list[Any]) -> tuple[int, int]:
        """Lease and publish the documents, BATCH at a time; (events sent, documents leased)."""
        sent = leased = 0
        for start in range(0, len(ids), BATCH):
            if self._stopping:
                break  # stop: finish the batch in hand, take no other (its leases are released)
            mine = await self._lease_many(name, ids[start : start + BATCH])
            if not mine:
                continue  # other replicas are publishing them
            leased += len(mine)
            leases = [f"{name}:{doc_id}" for doc_id in mine]
            try:
                sent += await self._publish_documents(self.db[name], mine)
            finally:
                await self.db[LEASES].delete_many({"_id": {"$in": leases}, "owner": self.owner})
                self._held.difference_update(leases)
        return sent, leased

    async def _lease_many(self, name: str, ids: list[Any]) -> list[Any]:
        """Claim documents for publishing, one lease document each (the insert is the claim); a
        lease whose holder died (expired) may be taken over. The ids claimed, in their order."""
        now = time.time()
        wanted = {f"{name}:{doc_id}": doc_id for doc_id in ids}
        # Held from before the insert: a stop that cancels the insert in flight may find it
        # applied on the server, and release() must delete it then (else it blocks 30 s).
        self._held.update(wanted)
        try:
            taken = await self._insert_leases(list(wanted), now)
            if taken:  # held by another relay, or left by one that died: expired ones are taken over
                stale = await self.db[LEASES].delete_many({"_id": {"$in": taken}, "until": {"$lt": now}})
                if stale.deleted_count:
                    still = set(await self._insert_leases(taken, now))
                    taken = [lease for lease in taken if lease in still]
        except Exception:
            # Some of an unordered insert may have landed: ours go now, not in lease_seconds.
            await self.db[LEASES].delete_many({"_id": {"$in": list(wanted)}, "owner": self.owner})
            self._held.difference_update(wanted)
            raise
        self._held.difference_update(taken)
        return [doc_id for lease, doc_id in wanted.items() if lease not in taken]

    async def _insert_leases(self, leases: list[str], now: float) -> list[str]:
        """Insert the leases, unordered; the ones another relay holds (a duplicate key)."""
        until = now + self.lease_seconds
        try:
            await self.db[LEASES].insert_many(
                [{"_id": lease, "owner": self.owner, "until": until} for lease in leases], ordered=False
            )
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [leases[int(e["index"])] for e in errors]
        return []

    async def release(self) -> None:
        """Delete the leases this relay still holds (a stop cut it short): by `_id` and owner,
        so another replica's lease of the same document is never touched."""
        held, self._held = list(self._held), set()
        if held:
            await self.db[LEASES].delete_many({"_id": {"$in": held}, "owner": self.owner})

    async def _publish_documents(self, coll: Any, ids: list[Any]) -> int:
        """Publish leased documents' entries, each document's in order and the documents side by
        side (the producer sends them in one request where it can), then clear exactly those.

        When an entry fails (the broker is away, a new topic has no leader yet) or the relay is
        stopped midway, the entries already sent are cleared all the same: the retry starts at
        each document's first unsent entry instead of sending the earlier ones a second time.
        """
        docs = {doc["_id"]: doc for doc in await coll.find({"_id": {"$in": ids}}, {OUTBOX: 1}).to_list()}
        entries: dict[Any, list[Doc]] = {doc_id: (docs.get(doc_id) or {}).get(OUTBOX) or [] for doc_id in ids}
        sent: dict[Any, list[Doc]] = {doc_id: [] for doc_id in ids}

        async def publish(doc_id: Any) -> None:
            for item in entries[doc_id]:
                await self._publish(item)
                sent[doc_id].append(item)

        try:
            outcomes = await asyncio.gather(*(publish(doc_id) for doc_id in ids), return_exceptions=True)
        finally:
            await self._clear(coll, sent, entries)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        return sum(len(items) for items in sent.values())

    @staticmethod
    async def _clear(coll: Any, sent: dict[Any, list[Doc]], entries: dict[Any, list[Doc]]) -> None:
        """Pull exactly the entries published. A document whose entries were all sent is marked
        not pending; one cut short stays pending (the sweep finds it whatever happens next).
        Entries a writer appended meanwhile stay too, and the documents read back show them, so
        they are marked pending again (a writer appending after the read marks it itself)."""
        done = [doc_id for doc_id, items in sent.items() if len(items) == len(entries[doc_id])]
        if len(sent) == 1:  # one document (a quiet moment): one command, which reads it back too
            ((doc_id, items),) = sent.items()
            update: Doc = {}
            if items:
                update["$pullAll"] = {OUTBOX: items}
            if done:
                update["$set"] = {PENDING: False}
            if not update:
                return
            after = await coll.find_one_and_update(
                {"_id": doc_id}, update, return_document=ReturnDocument.AFTER
            )
            if done and after is not None and after.get(OUTBOX):
                await coll.update_one({"_id": doc_id}, {"$set": {PENDING: True}})
            return
        ops = [
            UpdateOne(
                {"_id": doc_id},
                {
                    **({"$pullAll": {OUTBOX: items}} if items else {}),
                    **({"$set": {PENDING: False}} if doc_id in done else {}),
                },
            )
            for doc_id, items in sent.items()
            if items or doc_id in done
        ]
        if not ops:
            return
        await bulk_write_parts(coll, ops)
        after = await coll.find({"_id": {"$in": done}}, {OUTBOX: 1}).to_list() if done else []
        left = [doc["_id"] for doc in after if doc.get(OUTBOX)]
        if left:
            await coll.update_many({"_id": {"$in": left}}, {"$set": {PENDING: True}})

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
        """Publish named documents on every wake-up; sweep everything every sweep interval."""
        loop = asyncio.get_running_loop()
        try:
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
                await wait_set(self._wake, self.poll_seconds)
        finally:
            try:
                await self.release()
            except Exception:  # the database is away: the leases expire on their own
                log.warning("outbox leases not released at stop; they expire in %.0f s", self.lease_seconds)

    def stop(self) -> None:
        """End run() after the batch in hand (Runtime.stop waits a grace, then cancels)."""
        self._stopping = True
        self._wake.set()
