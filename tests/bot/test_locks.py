"""Conversation locks released many at a time: one script call frees exactly the caller's own locks."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.core.locks import RedisLocks


async def test_release_many_frees_only_own_locks_in_one_call(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    try:
        a = RedisLocks(client, redis_prefix)
        b = RedisLocks(client, redis_prefix)
        keys = [f"memory:cust{i}" for i in range(300)]
        assert await a.acquire_many(keys[:200]) == set(keys[:200])
        assert await b.acquire_many(keys[150:]) == set(keys[200:])
        await a.release_many(keys)  # b's 100 are named too: they must stay b's
        left = {k.decode() async for k in client.scan_iter(match=f"{redis_prefix}:lock:*")}
        assert left == {f"{redis_prefix}:lock:{k}" for k in keys[200:]}
        assert await a.acquire_many(keys) == set(keys[:200])
        await a.release_many([])  # nothing to free: no call, no error
        await a.release_many(keys)
        await b.release_many(keys)
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}:lock:*")] == []
    finally:
        await client.aclose()


async def test_a_reentrant_holder_takes_back_the_locks_its_failed_release_left(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    try:
        mine = RedisLocks(client, redis_prefix, ttl_ms=60_000, reentrant=True)
        other = RedisLocks(client, redis_prefix, ttl_ms=60_000, reentrant=True)
        plain = RedisLocks(client, redis_prefix, ttl_ms=60_000)
        keys = ["telegram:1", "telegram:2"]
        assert await mine.acquire_many(keys) == set(keys)
        await client.pexpire(f"{redis_prefix}:lock:telegram:1", 500)  # its release never ran; the lock ages
        # the same holder's next batch takes them at once, renewed; nobody else does
        assert await mine.acquire_many([*keys, "telegram:3"]) == {*keys, "telegram:3"}
        assert await client.pttl(f"{redis_prefix}:lock:telegram:1") > 50_000
        assert await other.acquire_many(keys) == set() and await plain.acquire_many(keys) == set()
        assert await plain.acquire_many(["telegram:4"]) == {"telegram:4"}
        assert await plain.acquire_many(["telegram:4"]) == set()  # not reentrant: its own lock is busy
        await mine.release_many([*keys, "telegram:3"])
        await plain.release_many(["telegram:4"])
        assert [k async for k in client.scan_iter(match=f"{redis_prefix}:lock:*")] == []
    finally:
        await client.aclose()
