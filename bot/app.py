"""The running application: database, dispatcher, outbox worker and channels, started and stopped in order.

Start: open the database (migrating an empty SQLite file), then the workers, then the channels. Stop: the
reverse — channels first so nothing new arrives, then the dispatcher finishes what it accepted, the outbox
drains, and the database closes last.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.assistant.responder import HumanOnly, Responder
from bot.core.attachments import OutboxFiles
from bot.core.dispatcher import Dispatcher, DispatchResult
from bot.core.locks import ConversationLocks, LocalLocks, RedisLocks
from bot.core.messages import InboundMessage
from bot.core.outbox_worker import OutboxWorker
from bot.desk import Desk
from bot.routing.policy import RoutingPolicy
from bot.settings import ConfigProblem, Settings, get_settings
from channels.base import Channel, ChannelRegistry
from channels.send_limits import SendLimits
from crm_store.engine import is_sqlite, make_engine, make_sessionmaker, needs_upgrade, upgrade

log = logging.getLogger(__name__)

Background = Callable[["App", asyncio.Event], Awaitable[None]]


def freeze_startup_heap() -> None:
    """For a long-running process, once started: what startup built (modules, mappers, the NLU model, caches)
    lives as long as the process, so it leaves the collector's view. Full collections then scan only what
    handling messages made, and pause for milliseconds instead of a tenth of a second. The memory startup used
    and freed (the model file's read buffers, a thread's scratch) goes back to the system: glibc keeps it."""
    gc.collect()
    gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        pass


class NotMigrated(RuntimeError):
    pass


def load_policy(settings: Settings) -> RoutingPolicy:
    """The routing policy file named in settings. A missing or broken one stops startup with its reason: a
    silent default would route every VIP to the general queue."""
    path = settings.config_path(settings.routing_policy)
    if not path.is_file():
        raise ConfigProblem(
            f"routing policy {path} not found: set TIERDESK_ROUTING_POLICY, or write a config folder with "
            "`tierdesk init DIR` and set TIERDESK_CONFIG_DIR to it"
        )
    try:
        return RoutingPolicy.load(path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigProblem(f"routing policy {path}: {exc}") from None


def load_default_responder(settings: Settings) -> Responder:
    """The FAQ bot when NLU is enabled; otherwise every message goes to a person."""
    if not settings.nlu.enabled:
        return HumanOnly()
    from bot.assistant.faq import load_responder

    return load_responder(settings)


def share_send_limits(registry: ChannelRegistry, limits: SendLimits) -> None:
    """Channels with send limits keep them together with every other process (Telegram's per-bot and per-chat
    rates, SMTP and webhook concurrency)."""
    for channel in registry:
        use = getattr(channel, "use_limits", None)
        if use is not None:
            use(limits)


class App:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        channels: list[Channel] | tuple[Channel, ...] = (),
        responder: Responder | None = None,
        desk: Desk | None = None,
        background: list[Background] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.registry = ChannelRegistry()
        for channel in channels:
            self.registry.add(channel)
        self._responder = responder
        self._desk = desk
        self._background = list(background or [])
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.engine: AsyncEngine | None = None
        self.sessions: async_sessionmaker[AsyncSession]
        self.dispatcher: Dispatcher
        self.outbox: OutboxWorker
        self.redis: Any = None
        self.ingest: Any = None
        self.intake: Any = None
        self.started = False

    async def start(self) -> App:
        s = self.settings
        self.engine = make_engine(s.database_url, schema=s.database_schema)
        if await needs_upgrade(self.engine):
            if not is_sqlite(s.database_url):
                raise NotMigrated("the database has no tierdesk tables: run `tierdesk db upgrade` first")
            log.info("empty SQLite database: creating the schema")
            await upgrade(s.database_url)
        self.sessions = make_sessionmaker(self.engine)
        self.writer_sessions = make_sessionmaker(self.engine, writer=True)
        locks: ConversationLocks = LocalLocks()
        if s.redis_url:
            import redis.asyncio as aioredis

            # a bounded pool that waits for a free connection instead of failing under a burst
            pool = aioredis.BlockingConnectionPool.from_url(s.redis_url, max_connections=64, timeout=30)
            self.redis = aioredis.Redis(connection_pool=pool)
            await self.redis.ping()
            locks = RedisLocks(self.redis, s.redis_prefix, int(s.dispatch.lock_ttl_s * 1000), reentrant=True)
            share_send_limits(self.registry, SendLimits(self.redis, s.redis_prefix))
        responder = self._responder or await asyncio.to_thread(load_default_responder, s)
        self.outbox = OutboxWorker(self.writer_sessions, self.registry, s.outbox, readers=self.sessions,
                                   files=OutboxFiles(self.registry, s.state_dir))
        await self.outbox.resume()  # what this sender held when it died goes out first, before anything new
        self.dispatcher = Dispatcher(
            self.writer_sessions,
            s,
            responder=responder,
            policy=load_policy(s),
            locks=locks,
            desk=self._desk,
            on_outbox=self.outbox.adopt,
            lease_for=self.outbox.lease_for,
        )
        self.dispatcher.start()
        self.outbox.start()
        if s.dispatch.ingest == "stream":
            await self._start_stream()
        for job in self._background:
            self._tasks.append(asyncio.create_task(job(self, self._stopping)))
        for channel in self.registry:
            await channel.start(self.deliver)
        self.started = True
        return self

    async def _start_stream(self) -> None:
        import os
        import socket

        from bot.core.ingest import StreamIngest
        from bot.core.intake_watch import IntakeWatch
        from crm_store.health import database_answers

        if self.redis is None:
            raise RuntimeError("dispatch.ingest = 'stream' needs redis_url")
        d = self.settings.dispatch
        self.ingest = StreamIngest(self.redis, self.settings.redis_prefix,
                                   claim_idle_ms=int(d.stream_claim_idle_s * 1000),
                                   max_deliveries=d.stream_max_deliveries,
                                   store_ok=lambda: database_answers(self.sessions))
        await self.ingest.ensure_group()
        consumer = f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.intake = IntakeWatch(self.ingest, lambda: self.ingest.consume(self.dispatcher.deliver, consumer,
                                                                           self._stopping),
                                  self._stopping, stall_s=d.stream_stall_s)
        self._tasks.append(asyncio.create_task(self.intake.run()))

    async def deliver(self, msg: InboundMessage) -> DispatchResult:
        """The callback every channel gets: returns once the message is stored (in the database, or in the
        Redis inbound stream in stream mode)."""
        if self.ingest is not None:
            return await self.ingest.publish(msg)
        return await self.dispatcher.deliver(msg)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        await self._stop_channels()
        self._stopping.set()  # background jobs and the stream consumer finish their current step
        _done, pending = await asyncio.wait(self._tasks, timeout=5) if self._tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.dispatcher.stop()
        await self.outbox.stop()
        await self._stop_channels()  # again: a client the outbox's last sends opened after the first stop is closed
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()
        if self.engine is not None:
            await self.engine.dispose()

    async def _stop_channels(self) -> None:
        """Every channel stops receiving and releases its connections (stopping twice is harmless)."""
        for channel in self.registry:
            try:
                await channel.stop()
            except Exception:
                log.exception("stopping channel %s failed", channel.name)

    def health(self) -> dict[str, bool | str]:
        """What `/readyz` reports: True when a part runs, False or the reason when it does not."""
        checks: dict[str, bool | str] = {
            "dispatcher": self.started and self.dispatcher.alive,
            "outbox": self.started and self.outbox.alive,
        }
        if self.intake is not None:
            checks["ingest"] = self.intake.problem() or True
        return checks

    async def __aenter__(self) -> App:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
