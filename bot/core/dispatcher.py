"""The dispatcher: every inbound message is logged exactly once and handled in arrival order.

Messages are handled in small batches, one transaction each (group commit): `deliver()` returns only when the
batch holding its message is committed, so a channel may acknowledge as soon as it returns. Contacts are
bulk-inserted with ON CONFLICT DO NOTHING first; only the rows that were new go on to ticketing, the bot and
routing, so a repeat (even one logged by another worker a moment ago) is a no-op returning the earlier result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.assistant.responder import HumanOnly, Responder
from bot.core import metrics
from bot.core.batch import BatchHandler, DispatchResult
from bot.core.locks import ConversationLocks, LocalLocks
from bot.core.messages import InboundMessage, utcnow
from bot.core.outbound import BatchContext
from bot.desk import Desk
from bot.routing.policy import RoutingPolicy
from bot.settings import Settings
from crm_store.errors import StoreUnavailable
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories.outbox import Reply

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    msg: InboundMessage
    future: asyncio.Future[DispatchResult]
    queued_at: float


def conversation_key(msg: InboundMessage) -> str:
    return f"{msg.channel}:{msg.sender}"


def _written_now(rows: list[dict], added: dict[str, int]) -> list[Reply]:
    """The outbox rows this transaction added (the first of a repeated idempotency key), as items to send."""
    items, seen = [], set()
    for row in rows:
        key = row["idempotency_key"]
        if key in added and key not in seen:
            seen.add(key)
            items.append(Reply.from_row(added[key], row))
    return items


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        responder: Responder | None = None,
        policy: RoutingPolicy | None = None,
        locks: ConversationLocks | None = None,
        desk: Desk | None = None,
        on_outbox: Callable[[list[Reply]], None] = lambda items: None,
        lease_for: Callable[[str, datetime], dict[str, Any] | None] = lambda channel, at: None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.responder = responder or HumanOnly()
        self.policy = policy or RoutingPolicy.default()
        self.locks = locks or LocalLocks()
        self.desk = desk or Desk.default()
        self.batch = BatchHandler(self.desk)
        self.on_outbox = on_outbox
        self.lease_for = lease_for
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self) -> None:
        """Finish what was accepted, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- intake ----------------------------------------------------------------------------------------------
    async def deliver(self, msg: InboundMessage) -> DispatchResult:
        """Hand over one message; returns once it is committed (or raises if it could not be stored)."""
        if self._task is None:
            raise RuntimeError("dispatcher is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(msg, loop.create_future(), loop.time())
        await self._queue.put(pending)
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        cfg = self.settings.dispatch
        while True:
            first = await self._queue.get()
            batch = [first]
            if cfg.batch_wait_ms > 0 and self._queue.empty():
                await asyncio.sleep(cfg.batch_wait_ms / 1000)
            while len(batch) < cfg.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle_locked(batch)
            except Exception as exc:
                log.exception("dispatch batch failed")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _handle_locked(self, batch: list[_Pending]) -> None:
        """Take the conversations' locks (Redis in scale-out), handle what we hold, retry the rest shortly."""
        waiting = batch
        for attempt in range(400):
            keys = {conversation_key(p.msg) for p in waiting}
            held = await self.locks.acquire_many(keys)
            now_batch = [p for p in waiting if conversation_key(p.msg) in held]
            waiting = [p for p in waiting if conversation_key(p.msg) not in held]
            try:
                if now_batch:
                    await self.handle_batch(now_batch)
            finally:
                await self.locks.release_many(held)
            if not waiting:
                return
            await asyncio.sleep(min(0.005 * (attempt + 1), 0.1))
        raise StoreUnavailable("conversation locks stayed busy")

    # -- the batch -------------------------------------------------------------------------------------------
    async def handle_batch(self, batch: list[_Pending], *, reconnected: bool = False) -> None:
        """One transaction for the batch; on failure, each message alone, so one bad message spoils nothing."""
        started = time.perf_counter()
        try:
            results = await self._transaction(batch)
        except (OperationalError, DBAPIError, StoreUnavailable) as exc:
            if getattr(exc, "connection_invalidated", False) and not reconnected:
                log.warning("database connection lost (%s); the batch once more on a new one", type(exc).__name__)
                return await self.handle_batch(batch, reconnected=True)
            if len(batch) == 1:
                self._fail(batch, StoreUnavailable(f"could not store message: {exc.__class__.__name__}: {exc}"))
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for p in batch:
                await self.handle_batch([p])
            return
        except Exception as exc:
            if len(batch) > 1:
                log.exception("batch of %d failed; retrying one by one", len(batch))
                for p in batch:
                    await self.handle_batch([p])
                return
            log.exception(
                "message %s/%s failed; logging it without handling", batch[0].msg.channel, batch[0].msg.external_id
            )
            try:
                results = await self._transaction(batch, safe_mode=str(exc) or type(exc).__name__)
            except Exception as final:
                self._fail(batch, StoreUnavailable(f"could not store message: {final}"))
                return
        self.batches += 1
        metrics.observe_batch(len(batch), time.perf_counter() - started)
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        for p in batch:
            if not p.future.done():
                p.future.set_exception(exc)

    async def _transaction(self, batch: list[_Pending], safe_mode: str | None = None) -> list[DispatchResult]:
        msgs = [p.msg for p in batch]
        async with self.sessions() as session, session.begin():
            ctx = BatchContext(
                session=session, now=utcnow(), settings=self.settings, policy=self.policy, responder=self.responder
            )
            results = await self.batch.handle(ctx, msgs, safe_mode)
            updates = ctx.changed_contacts()
            if updates:
                await contacts_repo.update_contacts(session, updates)
            rows = ctx.rows_to_write()
            leased = self._lease(rows, ctx.now)
            added = await outbox_repo.enqueue(session, rows) if rows else {}
        if ctx.outbox:
            self.on_outbox(_written_now(leased, added))
        return results

    def _lease(self, rows: list[dict], now: datetime) -> list[dict]:
        """Replies this process can send are leased to its outbox worker as they are written: handed over after
        the commit, they go out without a claiming transaction (and after the lease, by anyone, if we die)."""
        leased = []
        for row in rows:
            lease = self.lease_for(row["channel"], now)
            if lease is not None:
                row.update(lease, attempts=1)
                leased.append(row)
        return leased
