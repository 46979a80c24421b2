"""The stream consumer's watchdog: a consumer that stopped consuming, for whatever reason, is noticed by the
process itself and restarted, and `/readyz` says why intake is stalled.

"Stopped" is one of: the consumer task ended (a bug raised out of it), or it made no progress for `stall_s`
(no read finished and no entry was handled: Redis unreachable, or storing hangs). A consumer that finds
nothing to read finishes a read every half second, so an idle stream is progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.core.log_limit import limit_repeats

log = logging.getLogger(__name__)
limit_repeats(log)

Consumer = Callable[[], Coroutine[Any, Any, Any]]
MIN_STALL_S = 1.5
"""Above the consumer's blocking read (0.5 s) with room to spare: an idle consumer is never taken for stalled."""


def stall_reason(task_done: bool, idle_s: float, stall_s: float, consumer_problem: str) -> str:
    """Why intake is not moving, or "" when it is: a pure reading of what the watchdog sees."""
    if task_done:
        return "the inbound stream consumer stopped"
    if consumer_problem:
        return consumer_problem
    if idle_s > stall_s:
        return f"the inbound stream consumer made no progress for {idle_s:.0f}s"
    return ""


class IntakeWatch:
    """Runs `consume()` (a fresh consumer coroutine each call) and keeps it running."""

    def __init__(
        self, ingest: Any, consume: Consumer, stop: asyncio.Event, *, stall_s: float = 60.0, check_s: float = 1.0
    ) -> None:
        self.ingest = ingest
        self.consume = consume
        self.stop = stop
        self.stall_s = max(stall_s, MIN_STALL_S)
        self.check_s = check_s
        self.restarts = 0
        self._task: asyncio.Task[Any] | None = None

    def problem(self) -> str:
        """Why intake is stalled now ("" when it is not): for `/readyz`."""
        done = self._task is None or self._task.done()
        idle = time.monotonic() - self.ingest.last_progress
        return stall_reason(done and not self.stop.is_set(), idle, self.stall_s, self.ingest.problem)

    async def run(self) -> None:
        self._start()
        try:
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.check_s)
                if not self.stop.is_set():
                    await self.check()
        finally:  # on stop the consumer finishes its step by itself; otherwise (cancelled) it is cancelled too
            await self._end(graceful=self.stop.is_set())

    async def check(self) -> None:
        """One look: restart a consumer that ended or stalled."""
        task = self._task
        if task is not None and task.done():
            exc = None if task.cancelled() else task.exception()
            log.error(
                "inbound stream consumer stopped (%s); restarting it",
                f"{type(exc).__name__}: {exc}" if exc else "it returned",
            )
            self._start()
            return
        idle = time.monotonic() - self.ingest.last_progress
        if idle > self.stall_s:
            log.error(
                "inbound stream consumer made no progress for %.0fs (%s); restarting it",
                idle,
                self.ingest.problem or "no read or store finished",
            )
            await self._end()
            self._start()

    def _start(self) -> None:
        if self._task is not None:
            self.restarts += 1
        self.ingest.last_progress = time.monotonic()
        self._task = asyncio.create_task(self.consume(), name="inbound-stream-consumer")

    async def _end(self, *, graceful: bool = False) -> None:
        if self._task is None:
            return
        if not graceful and not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
