"""A cancellation stays a cancellation: waiting for a wake-up, and stopping long-lived tasks."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.aio import wait_set
from shared.service import stop_tasks


@pytest.mark.parametrize("turns", range(5))
async def test_a_cancel_that_arrives_as_the_event_is_set_still_cancels(turns: int) -> None:
    """The cancel lands `turns` loop turns after the wake-up: at one of them, Python 3.11's
    `wait_for(event.wait(), t)` returns normally instead (the waiting loop would never stop)."""
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_set(event, 30))
    await asyncio.sleep(0)
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    ended_before = waiting.done()  # then the cancel comes too late to matter: it returned
    waiting.cancel()
    if ended_before:
        assert await waiting is True
    else:
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 1) is True


async def test_a_loop_woken_as_it_is_stopped_ends() -> None:
    """A relay-like loop (wait for a wake-up or a poll, go round) ends at every cancel timing."""
    for turns in range(5):
        event = asyncio.Event()
        rounds = 0

        async def loop(event: asyncio.Event = event) -> None:
            nonlocal rounds
            while True:
                rounds += 1
                event.clear()
                await wait_set(event, 30)

        task = asyncio.create_task(loop())
        await asyncio.sleep(0)
        event.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        await stop_tasks([task], grace=1, rounds=1)
        assert task.cancelled(), f"the loop went on after a cancel {turns} turns after its wake-up"


async def test_stop_cancels_again_a_task_that_swallowed_its_cancel() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # the first cancel is lost, as a library might lose it

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await stop_tasks([task], grace=0.05, rounds=3)
    assert task.cancelled() and swallowed == 1


async def test_stop_never_waits_forever_for_a_task_that_will_not_end() -> None:
    release = asyncio.Event()

    async def immortal() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await stop_tasks([task], grace=0.05, rounds=2)
    assert not task.done() and loop.time() - started < 5
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
