"""The whole system in one background thread: the five services and the console, each on a real port.

The browser reaches the console over HTTP and the console reaches the services over HTTP, as in
`make run`; all of them share one namespace on the real broker and database, and one ManualClock.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from deploy.local.run import free_port
from services.casework.app import create_app as casework_app
from services.console.app import create_app as console_app
from services.console.settings import ConsoleSettings
from services.escalation.app import create_app as escalation_app
from services.intake.app import create_app as intake_app
from services.registry.app import create_app as registry_app
from services.repatriation.app import create_app as repatriation_app
from shared.clock import ManualClock
from shared.namespace import drop_namespace
from shared.settings import Settings

SERVICES: dict[str, Callable[..., FastAPI]] = {
    "registry": registry_app,
    "intake": intake_app,
    "casework": casework_app,
    "escalation": escalation_app,
    "repatriation": repatriation_app,
}


class Stack:
    """Start with start(), stop with stop(); urls name where each part answers."""

    def __init__(
        self, kafka: str, mongodb: str, *, clock: ManualClock | None = None, **settings: Any
    ) -> None:
        self.settings = Settings(
            kafka_bootstrap_servers=kafka,
            mongodb_uri=mongodb,
            namespace=f"b{uuid.uuid4().hex[:10]}_",
            outbox_poll_seconds=0.1,
            outbox_sweep_seconds=1.0,
            handler_backoff_seconds=0.02,
            **settings,
        )
        self.clock = clock or ManualClock()
        self.urls: dict[str, str] = {}
        self.servers: dict[str, uvicorn.Server] = {}
        self.serving: dict[str, Any] = {}  # name -> the future of server.serve() (done once stopped)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stack", daemon=True)

    def run(self, coro: Any, timeout: float = 120) -> Any:
        """Run a coroutine on the stack's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, *, only: list[str] | None = None) -> None:
        self.thread.start()
        names = only if only is not None else list(SERVICES)
        for name in names:
            self._serve(name, SERVICES[name](self.settings, self.clock))
        for name in SERVICES:
            self.urls.setdefault(name, f"http://127.0.0.1:{free_port()}")  # nobody answers there
        console_settings = ConsoleSettings(
            **{f"{n}_url": u for n, u in self.urls.items()},  # type: ignore[arg-type]
            service_timeout_seconds=5.0,
            live_poll_ms=500,
        )
        self._serve("console", console_app(console_settings, self.clock))
        self.run(self._ready())

    def _serve(self, name: str, app: FastAPI) -> None:
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self.servers[name] = server
        self.urls[name] = f"http://127.0.0.1:{port}"
        self.serving[name] = asyncio.run_coroutine_threadsafe(server.serve(), self.loop)

    async def _ready(self) -> None:
        deadline = self.loop.time() + 90
        while not all(s.started for s in self.servers.values()):
            if self.loop.time() > deadline:
                late = [n for n, s in self.servers.items() if not s.started]
                raise RuntimeError(f"did not start within 90 s: {late}")
            await asyncio.sleep(0.1)

    def halt(self, name: str, timeout: float = 60) -> None:
        """Stop one part and wait until its serve() returned (its port then refuses connections).

        A part still serving after `timeout` fails the caller with what uvicorn says of it: a
        probe's "still answers" alone once left nothing to read.
        """
        server = self.servers[name]
        server.should_exit = True
        try:
            self.serving[name].result(timeout)
        except TimeoutError:
            state = server.server_state
            raise AssertionError(
                f"{name} still serving {timeout:.0f} s after should_exit: started={server.started}, "
                f"connections={len(state.connections)}, tasks={len(state.tasks)}"
            ) from None

    def stop(self) -> None:
        for s in self.servers.values():
            s.should_exit = True

        async def _gone() -> None:
            deadline = self.loop.time() + 30
            # uvicorn never clears `started`: a server is gone when its serve() returned
            while not all(f.done() for f in self.serving.values()) and self.loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            with contextlib.suppress(Exception):
                await drop_namespace(self.settings)

        with contextlib.suppress(Exception):
            self.run(_gone(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
