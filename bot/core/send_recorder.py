"""Records what each send did as soon as it is known, and keeps trying while the database is away.

A reply that was delivered but whose record failed must never be sent again: the result stays in memory and is
written when the database answers again. Results that complete while a write is in flight join the next write
(a group commit, not a window): each waits for at most one transaction. A result whose write fails for a reason
that is not an outage (a bad row) is written alone, so it cannot hold the others back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from crm_store.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0
GATHER_TURNS = 8
"""Event-loop turns (not time) a group waits for the results its previous write released: a sender freed by a
write needs about four to send its next reply and hand the result in."""


def is_outage(exc: BaseException) -> bool:
    """Whether a failed write is the database being away (retry it) rather than something wrong with the data."""
    if isinstance(exc, (IntegrityError, ProgrammingError)):
        return False
    return isinstance(exc, (DBAPIError, OSError, TimeoutError, StoreUnavailable))


def retry_delay(failures: int) -> float:
    """Seconds before the next try of a failed write: doubling from 0.1 s to at most 2 s."""
    return min(RETRY_MIN_S * (2 ** max(failures - 1, 0)), RETRY_MAX_S)


class SendRecorder(Generic[T]):
    """`await record(result)` returns once `write([result, ...])` committed it (or gave up on a bad one)."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, what: str = "sends") -> None:
        self._write = write
        self._what = what
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._writing: list[tuple[T, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.failing_since: float | None = None
        self.outages = 0
        """How many times writing started failing (each outage once, however long it lasted)."""

    @property
    def unrecorded(self) -> int:
        return len(self._queue) + len(self._writing)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="send-recorder")

    async def record(self, result: T) -> None:
        self.start()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((result, done))
        self._idle.clear()
        self._ready.set()
        await asyncio.shield(done)  # a cancelled sender still gets its result written

    async def close(self, grace_s: float) -> int:
        """Write what is left for at most `grace_s` seconds, then stop; returns how many stayed unrecorded."""
        if self.unrecorded:
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except TimeoutError:
                pass
        left = self.unrecorded
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for _, done in self._queue + self._writing:
            if not done.done():
                done.cancel()
        self._queue, self._writing = [], []
        if left:
            log.error("%d %s delivered but not recorded at shutdown: they are sent again later", left, self._what)
        return left

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._gather()
            self._writing, self._queue = self._writing + self._queue, []
            while self._writing:
                await self._write_pending()
            if not self._queue:
                self._idle.set()

    async def _gather(self) -> None:
        """A few turns of the event loop (no waiting) before a group is taken: the senders the last write just
        released hand in their next results and join it. Taken at once, a group held only what arrived while the
        previous write was in flight, and every other write went half full."""
        for _ in range(GATHER_TURNS):
            await asyncio.sleep(0)

    async def _write_pending(self) -> None:
        failures = 0
        while self._writing:
            try:
                await self._write([result for result, _ in self._writing])
            except Exception as exc:
                if not is_outage(exc):
                    await self._one_by_one()
                    return
                failures += 1
                self._note_outage(exc)
                await asyncio.sleep(retry_delay(failures))
                self._writing, self._queue = self._writing + self._queue, []  # what completed meanwhile joins
                continue
            self._settle(self._writing)
            self._writing = []
            self._note_recovered()

    async def _one_by_one(self) -> None:
        batch, self._writing = self._writing, []
        for i, (result, done) in enumerate(batch):
            try:
                await self._write([result])
            except Exception as exc:
                if is_outage(exc):  # the database went away meanwhile: the rest waits for it
                    self._writing = batch[i:]
                    return
                log.exception("recording one of the %s failed; it is not recorded", self._what)
            self._settle([(result, done)])

    @staticmethod
    def _settle(items: list[tuple[T, asyncio.Future[None]]]) -> None:
        for _, done in items:
            if not done.done():
                done.set_result(None)

    def _note_outage(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            self.outages += 1
            log.warning(
                "recording %d %s failed (%s: %s); keeping them and retrying, nothing is sent twice",
                self.unrecorded,
                self._what,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )

    def _note_recovered(self) -> None:
        if self.failing_since is not None:
            log.warning("recording %s works again after %.1fs", self._what, time.monotonic() - self.failing_since)
            self.failing_since = None
