"""A watchdog for tests that stand still: after a test phase has lasted WATCHDOG_SECONDS, print
what the event loop is waiting for (every task's stack, the timers, the sockets) and every
thread's stack, once per phase, to stderr and to `.cache/test-watchdog.log`.

Why: a fresh-clone run once stood still for minutes in test_escalation_deadlines with the loop
asleep; a thread-stack dump (py-spy) shows only `select`, not which await never finished. The
watchdog reads the loop from another thread without touching it (no call on the loop, so it
cannot wake it and hide what it came to see); the dumps are printed again in the run's summary.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

WATCHDOG_SECONDS = 300.0
LOG = Path(__file__).resolve().parents[2] / ".cache" / "test-watchdog.log"


class Watchdog:
    def __init__(self, seconds: float = WATCHDOG_SECONDS, poll: float = 5.0, log: Path | None = LOG) -> None:
        self.seconds = seconds
        self.poll = poll
        self.log = log
        self.phase: tuple[str, float] | None = None  # (test id and phase, monotonic start)
        self.dumps: list[str] = []
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._watch, name="test-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def enter(self, what: str) -> None:
        self.phase = (what, time.monotonic())

    def leave(self) -> None:
        self.phase = None

    def _watch(self) -> None:
        dumped: tuple[str, float] | None = None
        while True:
            time.sleep(self.poll)
            phase = self.phase
            if phase is None or phase is dumped or time.monotonic() - phase[1] < self.seconds:
                continue
            dumped = phase
            text = self.describe(phase[0], time.monotonic() - phase[1])
            self.dumps.append(text)
            if sys.__stderr__ is not None:
                sys.__stderr__.write(text)
            if self.log is not None:
                try:
                    self.log.parent.mkdir(exist_ok=True)
                    with self.log.open("a") as f:
                        f.write(text)
                except OSError:
                    pass

    def _loop(self) -> Any:
        """The event loop the main thread is running, found in its frames (None when none runs)."""
        frame = sys._current_frames().get(self._main or 0)
        while frame is not None:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, asyncio.AbstractEventLoop):
                return candidate
            frame = frame.f_back
        return None

    def describe(self, what: str, seconds: float) -> str:
        out = io.StringIO()
        print(f"\n=== watchdog: {what} has lasted {seconds:.0f} s ===", file=out)
        loop = self._loop()
        try:
            if loop is not None:
                now = loop.time()
                timers = sorted(list(getattr(loop, "_scheduled", [])), key=lambda h: h.when())
                print(f"timers: {len(timers)}", file=out)
                for h in timers[:20]:
                    print(f"  in {h.when() - now:8.2f} s  {h._callback!r}", file=out)
                print(f"ready callbacks: {len(getattr(loop, '_ready', []))}", file=out)
                selector = getattr(loop, "_selector", None)
                if selector is not None:
                    for key in list(selector.get_map().values()):
                        print(f"  fd {key.fd} events {key.events} {key.fileobj!r}", file=out)
                for task in list(asyncio.all_tasks(loop)):
                    print(f"--- {task!r}", file=out)
                    for f in task.get_stack(limit=25):
                        print(f"    {f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}", file=out)
            else:
                print("no event loop running in the main thread", file=out)
        except Exception:  # the loop changed under us: say so and go on with the threads
            traceback.print_exc(file=out)
        for ident, frame in sys._current_frames().items():
            name = next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))
            print(f"### thread {name}", file=out)
            out.write("".join(traceback.format_stack(frame, limit=25)))
        return out.getvalue()
