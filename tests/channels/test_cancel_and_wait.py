"""Stopping a channel loop that swallowed a cancellation (as `asyncio.wait_for` can on Python 3.11): the email
and Telegram channels stop all the same."""

from __future__ import annotations

import asyncio

from channels.base import cancel_and_wait
from channels.telegram.channel import TelegramChannel


async def swallowing_once(swallowed: list[int]) -> None:
    """A loop that goes on after the first cancellation (what a swallowed one looks like from its side), counting
    it in `swallowed`, and ends on the second."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(1)


async def test_a_loop_that_swallows_one_cancellation_is_cancelled_again_and_stops() -> None:
    swallowed: list[int] = []
    task = asyncio.create_task(swallowing_once(swallowed))
    await asyncio.sleep(0)
    assert await cancel_and_wait(task, within=5.0) is True
    assert task.cancelled() and len(swallowed) == 1


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


async def test_telegram_stops_although_its_polling_loop_swallowed_the_cancellation() -> None:
    channel = TelegramChannel("123:abc")
    swallowed: list[int] = []  # as a poll that was inside a timeout when the cancellation came
    channel._polling = asyncio.create_task(swallowing_once(swallowed))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(channel.stop(), 10)  # (a stop that awaited the swallowed cancellation hung until this)
    assert asyncio.get_running_loop().time() - started < 5.0  # cancelled again after 0.5 s
    assert len(swallowed) == 1 and channel._polling is None
