"""Two dispatchers (two workers) on one database with Redis locks: still one contact per message and one
conversation per customer, whoever gets each message first."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.app import App
from bot.core.locks import RedisLocks
from bot.core.messages import InboundMessage
from channels.memory import MemoryChannel
from crm_store.models import Contact, Ticket
from tests.bot.conftest import settings_for


async def test_redis_locks_exclude_and_expire(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    try:
        a = RedisLocks(client, redis_prefix, ttl_ms=200)
        b = RedisLocks(client, redis_prefix, ttl_ms=200)
        assert await a.acquire_many(["c1", "c2"]) == {"c1", "c2"}
        assert await b.acquire_many(["c2", "c3"]) == {"c3"}
        await b.release_many(["c2"])  # not b's lock: must stay
        assert await b.acquire_many(["c2"]) == set()
        await a.release_many(["c1", "c2"])
        assert await b.acquire_many(["c2"]) == {"c2"}
        await asyncio.sleep(0.3)  # a crashed holder's lock expires
        assert await a.acquire_many(["c3"]) == {"c3"}
    finally:
        await client.aclose()


async def test_two_workers_share_the_work_without_duplicates(db, redis_url, redis_prefix):
    apps = [
        App(settings_for(db, redis_url=redis_url, redis_prefix=redis_prefix), channels=[MemoryChannel("telegram")])
        for _ in range(2)
    ]
    for app in apps:
        await app.start()
    try:
        msgs = [
            InboundMessage.build(channel="telegram", external_id=f"m{i}", sender=str(i % 15), text=f"hello {i}")
            for i in range(120)
        ]
        # at-least-once delivery: every message reaches both workers, in any order
        results = await asyncio.gather(*(app.deliver(m) for m in msgs for app in apps))
        assert sum(not r.duplicate for r in results) == 120
        async with apps[0].sessions() as s:
            contacts = await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in"))
            tickets = await s.scalar(select(func.count()).select_from(Ticket))
        assert contacts == 120 and tickets == 15
    finally:
        for app in apps:
            await app.stop()
    client = aioredis.from_url(redis_url)
    try:
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}:lock:*")] == []  # all released
    finally:
        await client.aclose()
