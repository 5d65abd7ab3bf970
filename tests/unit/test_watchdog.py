"""The test watchdog names the await that stands still, read from another thread."""

from __future__ import annotations

import asyncio
import threading
import time

from tests.support.watchdog import Watchdog


async def wait_for_a_future_nobody_completes_on_the_loop(dog: Watchdog) -> None:
    loop = asyncio.get_running_loop()
    never_by_the_loop: asyncio.Future[None] = loop.create_future()

    def later() -> None:
        deadline = time.monotonic() + 10
        while not dog.dumps and time.monotonic() < deadline:
            time.sleep(0.05)
        loop.call_soon_threadsafe(never_by_the_loop.set_result, None)

    threading.Thread(target=later, daemon=True).start()
    await never_by_the_loop


def test_a_standing_test_is_described_with_the_awaiting_task() -> None:
    dog = Watchdog(seconds=0.3, poll=0.05, log=None)
    dog.start()
    dog.enter("tests/x.py::standing")
    asyncio.run(wait_for_a_future_nobody_completes_on_the_loop(dog))
    dog.leave()
    assert len(dog.dumps) == 1
    text = dog.dumps[0]
    assert "tests/x.py::standing has lasted" in text
    assert "wait_for_a_future_nobody_completes_on_the_loop" in text  # the task's own frame
    assert "### thread MainThread" in text


def test_nothing_is_described_while_tests_move() -> None:
    dog = Watchdog(seconds=0.5, poll=0.05, log=None)
    dog.start()
    for n in range(6):
        dog.enter(f"tests/x.py::quick{n}")
        time.sleep(0.1)
        dog.leave()
    assert dog.dumps == []
