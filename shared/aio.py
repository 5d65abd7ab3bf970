"""Small asyncio helpers that keep a cancellation a cancellation.

Python 3.11's `asyncio.wait_for` swallows a cancellation that arrives just after the awaited
thing completed (it returns the result instead of raising; fixed in 3.12). A loop that waits
for a wake-up with `wait_for(event.wait(), timeout)` then never sees the cancel that stops it,
goes round again, and whoever awaits the task (a service's stop) waits forever: a test run
that stood still with the loop idle was this (escalation's notifier, cancelled at the moment it
was woken). `asyncio.wait` has no such path.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until the event is set or `timeout` seconds pass; whether it was set.

    A cancellation always propagates, whenever it arrives.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)
