"""Per-credential rate limits shared by every replica: fixed windows counted in MongoDB.

One document per credential (`{_id: credential, window, n}`), so the collection stays as small as
the directory and every write is by `_id` (FerretDB here answers only `_id` from an index):

- within a window, a request is one `$inc` on `{_id, window}`: atomic on MongoDB, and counted
  by every replica alike, so N replicas admit `limit` requests per window in all, not N times it;
- the first request of a new window resets the count (`{_id, window: {$ne: w}}` -> `n: 1`);
  replicas racing there converge, the loser counting into the new window;
- a replica reserves a few requests at a time (one write for `chunk` requests: `limit // 100`,
  at most 10, at least 1), so the counter costs a write per ten requests at the default
  limit; what a replica reserved and did not use by the window's end is lost, so all replicas
  together admit at most `limit`, and at worst (replicas x (chunk - 1)) fewer;
- a replica that has seen a credential over its limit refuses it locally until the window ends:
  a client in a retry loop costs no database write, and the others' requests go on.

Fixed windows let a client send up to twice the limit across a window boundary; the limit is a
guard against loops and floods, not an exact quota.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.clock import Clock
from shared.mongo import Doc

COLLECTION = "rate_windows"


@dataclass(frozen=True)
class Verdict:
    """Whether a request may go on; if not, in how many seconds the window ends (Retry-After)."""

    allowed: bool
    retry_after: int = 0
    count: int = 0


class RateLimiter:
    """At most `limit` requests per `window_seconds` per credential, across replicas."""

    def __init__(self, db: AsyncDatabase[Doc], *, clock: Clock, limit: int, window_seconds: float) -> None:
        self.db, self.clock = db, clock
        self.limit, self.window = limit, window_seconds
        self.chunk = max(1, min(10, limit // 100))
        self._full: dict[str, int] = {}  # credential -> a window this replica saw over the limit
        self._reserved: dict[str, tuple[int, int]] = {}  # credential -> (window, requests left)

    def _retry_after(self, window: int) -> int:
        end = (window + 1) * self.window
        return max(1, math.ceil(end - self.clock.now().timestamp()))

    async def admit(self, credential: str) -> Verdict:
        """Count one request of a credential; refuse it past the limit of the current window."""
        if self.limit <= 0:
            return Verdict(True)
        window = int(self.clock.now().timestamp() // self.window)
        if self._full.get(credential) == window:
            return Verdict(False, self._retry_after(window), self.limit + 1)
        held, left = self._reserved.get(credential, (window, 0))
        if held == window and left > 0:
            self._reserved[credential] = (window, left - 1)
            return Verdict(True)
        count = await self._count(credential, window, self.chunk)
        granted = max(0, min(self.chunk, self.limit - (count - self.chunk)))
        if granted == 0:
            self._full[credential] = window
            return Verdict(False, self._retry_after(window), count)
        held, left = self._reserved.get(credential, (window, 0))  # others may have reserved meanwhile
        self._reserved[credential] = (window, (left if held == window else 0) + granted - 1)
        return Verdict(True, 0, count)

    async def _count(self, credential: str, window: int, n: int) -> int:
        """Add n to the credential's count in this window; the count after."""
        coll = self.db[COLLECTION]
        for _ in range(5):
            doc = await coll.find_one_and_update(
                {"_id": credential, "window": window},
                {"$inc": {"n": n}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return int(doc["n"])
            moved = await coll.update_one(
                {"_id": credential, "window": {"$ne": window}}, {"$set": {"window": window, "n": n}}
            )
            if moved.modified_count == 1:
                return n
            try:
                await coll.insert_one({"_id": credential, "window": window, "n": n})
                return n
            except DuplicateKeyError:
                continue  # another replica opened the window (or the credential) first: count in it
        raise RuntimeError(f"rate window of {credential!r} kept changing under us")
