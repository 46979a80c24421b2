"""Stopping a channel loop that swallowed a cancellation (as `asyncio.wait_for` can on Python 3.11)."""

from __future__ import annotations

import asyncio

from channels.base import cancel_and_wait


async def test_a_loop_that_swallows_one_cancellation_is_cancelled_again_and_stops() -> None:
    swallowed = 0

    async def loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # what a swallowed cancellation looks like from the loop's side: it goes on

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task, within=5.0) is True
    assert task.cancelled() and swallowed == 1


async def test_a_loop_that_never_ends_is_given_up_on_after_the_bound() -> None:
    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    assert await cancel_and_wait(task, within=0.3) is False
    assert 0.25 <= asyncio.get_running_loop().time() - started < 2.0 and not task.done()
    let_go.set()
    await task


async def test_a_loop_that_failed_is_stopped_quietly() -> None:
    async def failed() -> None:
        raise RuntimeError("the loop had died already")

    task = asyncio.create_task(failed())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task) is True
