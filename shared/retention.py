"""The scheduled retention job (UU PDP): each service that holds people's data anonymises what is
past LINDUNGI_RETENTION_DAYS, once a day, and logs what it did. Every replica runs it; each
anonymisation is a conditional single-document write, so replicas racing change a record once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

log = logging.getLogger("lindungi.retention")

ANONYMISED = "[anonymised]"


async def run_forever(
    job: Callable[[timedelta], Awaitable[object]],
    *,
    older_than: timedelta,
    every_seconds: float,
    first_after: float = 60.0,
) -> None:
    """A run shortly after start (not at once: a restart loop should not rescan), then one per interval."""
    await asyncio.sleep(first_after)
    while True:
        try:
            log.info("%s", await job(older_than))
        except Exception:  # the database away, a race lost too often: the next run tries again
            log.exception("retention run failed; next in %.0f s", every_seconds)
        await asyncio.sleep(every_seconds)
