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
