"""Scale-out ingestion through a Redis Stream: channels publish, workers consume; no loss, no duplicates, and a
dead worker's unacknowledged entries are taken over."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.app import App
from bot.core.ingest import StreamIngest, decode, encode
from bot.core.messages import Attachment, InboundMessage
from bot.settings import DispatchSettings
from crm_store.models import Contact
from tests.bot.conftest import settings_for


def test_stream_encoding_round_trips_a_message():
    msg = InboundMessage.build(channel="email", external_id="<x@y>", sender="a@b", text="héllo 你好", meta={"k": "v"},
                               attachments=(Attachment("file", "a.pdf", "application/pdf", 10, "ref"),),
                               thread_ref="<p@y>")
    assert decode(encode(msg)) == msg


async def _contacts(app: App) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")))


async def _until(predicate, seconds: float = 30.0) -> None:
    for _ in range(int(seconds * 20)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_two_stream_workers_store_every_message_once(db, redis_url, redis_prefix):
    settings = settings_for(db, redis_url=redis_url, redis_prefix=redis_prefix,
                            dispatch=DispatchSettings(ingest="stream", batch_wait_ms=1.0))
    apps = [await App(settings).start() for _ in range(2)]
    try:
        msgs = [InboundMessage.build(channel="telegram", external_id=f"s{i % 280}", sender=f"u{i % 280 % 17}",
                                     text=f"hi {i}") for i in range(300)]  # 20 redeliveries
        await asyncio.gather(*(apps[i % 2].deliver(m) for i, m in enumerate(msgs)))
        await _until(lambda: _pending_and(apps[0], 280))
    finally:
        for app in apps:
            await app.stop()


async def _pending_and(app: App, expected: int) -> bool:
    return await _contacts(app) == expected and await app.ingest.pending() == 0 and \
        await app.redis.xlen(app.ingest.stream) == 0


async def test_a_dead_workers_entries_are_taken_over(db, redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    try:
        front = StreamIngest(client, redis_prefix)
        await front.ensure_group()
        for i in range(25):
            await front.publish(InboundMessage.build(channel="webchat", external_id=f"d{i}", sender="v1", text="x"))
        # a worker reads them and dies before acknowledging
        taken = await client.xreadgroup(front.group, "dead-worker", {front.stream: ">"}, count=100)
        assert len(taken[0][1]) == 25 and await front.pending() == 25
    finally:
        await client.aclose()
    settings = settings_for(db, redis_url=redis_url, redis_prefix=redis_prefix,
                            dispatch=DispatchSettings(ingest="stream"))
    app = App(settings)
    await app.start()
    try:
        app.ingest.claim_idle_ms = 0  # the test cannot wait 30 s for the dead worker's entries to go stale
        await _until(lambda: _pending_and(app, 25))
    finally:
        await app.stop()
