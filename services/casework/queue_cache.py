"""What casework's queue reads answered, kept per replica until their queue's change stamp moves.

The desk's queue page is read every second by every open browser, and each read used to make the
database read every waiting entry (the overview) and a queue's first hundred (the listing). Most
of those reads find nothing changed. So each answer is kept here under its queue's change stamp
(store.STAMPS, moved by the projection after every write of one of the queue's entries): a read
first fetches the stamps (one small read) and recomputes only what belongs to a queue whose stamp
moved. Every replica keeps its own, so each recomputes at most once per change.

A kept answer also expires after TTL, whatever the stamps say. The stamps cover every write the
projection makes and every crash between a write and its bump (the redelivered event moves them
again); the TTL bounds what they cannot: an event that ends in the dead-letter topic between the
two, a stamps collection restored or dropped by hand, an entry repaired by hand, the rare race of
two followers of one case where the one that crashed named a queue the other's entry no longer
does. Thirty seconds of staleness at worst, in those cases only, costs one read per queue and
replica every thirty seconds otherwise.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.clock import Clock
from shared.service import Runtime

TTL = timedelta(seconds=30)


@dataclass(frozen=True)
class Kept:
    stamp: Any
    at: datetime
    value: Any


class StampedCache:
    """Answers by key, each valid while its stamp is the one it was computed under, and for TTL."""

    def __init__(self, clock: Clock, *, ttl: timedelta = TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._kept: dict[Any, Kept] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Any, stamp: Any) -> Any | None:
        """The value kept under this key and stamp, if it is younger than TTL; else None."""
        kept = self._kept.get(key)
        if kept is None or kept.stamp != stamp or self.clock.now() - kept.at >= self.ttl:
            self.misses += 1
            return None
        self.hits += 1
        return kept.value

    def put(self, key: Any, stamp: Any, value: Any) -> None:
        """Keep a value computed from reads made after `stamp` was read (never before it)."""
        self._kept[key] = Kept(stamp, self.clock.now(), value)


_CACHES: weakref.WeakKeyDictionary[Runtime, StampedCache] = weakref.WeakKeyDictionary()


def of(rt: Runtime) -> StampedCache:
    """This replica's cache of queue answers (made once per runtime)."""
    found = _CACHES.get(rt)
    if found is None:
        found = _CACHES[rt] = StampedCache(rt.clock)
    return found
