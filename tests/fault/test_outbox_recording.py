"""The database goes away between a send and its record (a private PostgreSQL, stopped for real): the result is
kept, recorded once the database is back, and nothing is sent again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from bot.core.messages import OutboundMessage, utcnow
from bot.core.outbox_worker import OutboxWorker
from bot.settings import OutboxSettings
from channels.base import ChannelRegistry
from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact, OutboxItem
from tests.fault.services import PostgresServer


class GatedChannel:
    """Delivers when the test opens the gate; counts every delivery."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = 0
        self.sent: list[str] = []

    async def start(self, deliver) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, message: OutboundMessage) -> str:
        self.waiting += 1
        await self.gate.wait()
        self.sent.append(message.recipient)
        return f"gated-{len(self.sent)}"


async def test_sends_recorded_after_a_database_outage_are_never_sent_again(private_postgres: PostgresServer):
    await upgrade(private_postgres.url)
    engine = make_engine(private_postgres.url)
    sessions = make_sessionmaker(engine, writer=True)
    try:
        async with sessions() as s, s.begin():
            at = utcnow() - timedelta(seconds=1)
            s.add_all(
                OutboxItem(
                    idempotency_key=f"k{i}",
                    channel="gated",
                    recipient=f"c{i}",
                    text="hello",
                    author="bot",
                    status="pending",
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                    buttons=[],
                    meta={},
                )
                for i in range(5)
            )
        channel = GatedChannel()
        registry = ChannelRegistry()
        registry.add(channel)
        worker = OutboxWorker(sessions, registry, OutboxSettings(concurrency=8, sender_id="w1"))
        passing = asyncio.create_task(worker.drain_once())
        for _ in range(200):  # all five claimed and at the channel
            if channel.waiting == 5:
                break
            await asyncio.sleep(0.05)
        assert channel.waiting == 5
        private_postgres.stop()
        channel.gate.set()  # delivered while the database is down: the records cannot be written
        for _ in range(100):
            if worker.recorder.failing_since is not None:
                break
            await asyncio.sleep(0.05)
        assert worker.recorder.failing_since is not None and worker.recorder.unrecorded == 5
        assert not passing.done(), "the pass waits for its records"
        await asyncio.sleep(1.0)  # a few failed tries
        private_postgres.start()
        assert await asyncio.wait_for(passing, 30) == 5
        assert worker.recorder.failing_since is None and worker.recorder.outages == 1
        assert await worker.drain() == 0
        async with sessions() as s:
            rows = list(await s.scalars(select(OutboxItem)))
            logged = list(await s.scalars(select(Contact).where(Contact.direction == "out")))
        assert sorted(channel.sent) == [f"c{i}" for i in range(5)], "each delivered once"
        assert [r.status for r in rows] == ["sent"] * 5 and all(r.claimed_by is None for r in rows)
        assert len(logged) == 5
        await worker.recorder.close(1.0)
    finally:
        await engine.dispose()
