"""Run a service until it has stored a handler's effects, then die before the offset commit.

`python -m tests.support.crash casework` : the process exits with code 137 (as if killed)
right after the first handler returns, so the effects are in MongoDB and Kafka has no commit.
Settings come from the environment (LINDUNGI_NAMESPACE and the endpoints).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

from shared.envelope import Envelope


async def main(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    rt = app.state.runtime
    rt.relay.poll_seconds = 3600  # the relay must not publish before we die
    rt.relay.wake = lambda *ids: None

    async def die(env: Envelope) -> None:
        os._exit(137)

    rt.after_handle.append(die)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(120)
    sys.exit("no message arrived within 120 s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
