"""How the outbox groups its records: one conversation's next reply goes out without waiting for the record of the
one before (still in order, still at most `outbox.concurrency` unrecorded), so an agent's many notices share a
recording transaction; and replies left unleased while the sender was behind go out as soon as it catches up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.core.messages import utcnow
from bot.core.outbox_worker import OutboxWorker
from bot.settings import OutboxSettings
from channels.base import ChannelRegistry
from channels.memory import MemoryChannel
from crm_store.engine import make_sessionmaker
from crm_store.models import OutboxItem
from crm_store.repositories import outbox as outbox_repo


def _registry(channel: MemoryChannel) -> ChannelRegistry:
    registry = ChannelRegistry()
    registry.add(channel)
    return registry


async def _rows(db, keys: list[str], *, recipient: str | None = None, claimed_by: str | None = None) -> None:
    at = utcnow()
    async with make_sessionmaker(db.engine, writer=True)() as s, s.begin():
        s.add_all(
            OutboxItem(
                idempotency_key=key,
                channel="memory",
                recipient=recipient or key,
                text=key,
                author="bot",
                status="pending",
                attempts=1 if claimed_by else 0,
                claimed_by=claimed_by,
                next_attempt_at=at + timedelta(seconds=60 if claimed_by else 0),
                created_at=at,
                buttons=[],
                meta={},
            )
            for key in keys
        )


async def test_one_conversations_replies_go_out_in_order_and_share_records_within_the_bound(db):
    channel = MemoryChannel()
    keys = [f"notice-{i}" for i in range(10)]
    await _rows(db, keys, recipient="agent-1")
    worker = OutboxWorker(
        make_sessionmaker(db.engine, writer=True), _registry(channel), OutboxSettings(concurrency=4, batch=50)
    )
    writes: list[int] = []
    release = asyncio.Event()
    record = worker.recorder._write

    async def held_write(outcomes) -> None:
        writes.append(len(outcomes))
        await release.wait()
        await record(outcomes)

    worker.recorder._write = held_write
    passing = asyncio.create_task(worker.drain_once())
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert len(channel.sent) == 4  # sent one after the other, none recorded yet: the bound holds
    release.set()
    assert await passing == 10
    await worker.recorder.close(1.0)
    assert channel.sent_to("agent-1") == keys
    assert sum(writes) == 10 and len(writes) <= 4
    async with db.sessions() as s:
        assert await outbox_repo.counts_by_status(s) == {"sent": 10}


async def test_replies_left_unleased_while_behind_go_out_once_the_backlog_is_through(db):
    channel = MemoryChannel()
    held = [f"held-{i}" for i in range(11)]
    await _rows(db, held, claimed_by="w1")
    worker = OutboxWorker(
        make_sessionmaker(db.engine, writer=True),
        _registry(channel),
        OutboxSettings(sender_id="w1", batch=2, poll_interval_s=30.0),
    )
    assert await worker.resume() == 11
    assert worker.lease_for("memory", utcnow()) is None  # behind: a reply committed now waits in the table
    await _rows(db, ["late"])
    worker.start()
    try:
        await channel.wait_for(lambda m: m.recipient == "late", within=5.0)  # not a poll interval later
    finally:
        await worker.stop(drain_for=2.0)
    assert sorted(m.recipient for m in channel.sent) == sorted([*held, "late"])
