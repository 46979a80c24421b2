"""Send limits shared through a real Redis by several "processes" (each with its own client), the in-process
fallback with eviction, and what happens when Redis is away."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from channels.send_limits import LocalLimits, Rate, SendLimits
from tests.fault.services import free_port


async def _clients(url: str, n: int) -> list[aioredis.Redis]:
    return [aioredis.from_url(url) for _ in range(n)]


async def test_processes_sharing_redis_take_turns_from_one_bucket(redis_url, redis_prefix):
    clients = await _clients(redis_url, 3)
    try:
        processes = [SendLimits(c, redis_prefix) for c in clients]
        one_a_second = Rate(per_s=1.0, burst=1)
        # six turns taken in quick succession by three processes: each waits one second more than the last
        reserved = [await processes[i % 3]._reserve_turn([("tg:1:all", one_a_second)]) for i in range(6)]
        drift = 0.5  # time that passes between the reservations on a busy machine
        for k, wait in enumerate(reserved):
            assert k - drift <= wait <= k, reserved
        # a bucket lives only until it has refilled: no key is left for every chat ever served
        ttl_ms = await clients[0].pttl(f"{redis_prefix}:limits:tg:1:all")
        assert 0 < ttl_ms <= 6_001
        await processes[0]._reserve_turn([("tg:1:chat:42", Rate(per_s=2.0, burst=1))])
        assert 0 < await clients[0].pttl(f"{redis_prefix}:limits:tg:1:chat:42") <= 501
    finally:
        for c in clients:
            await c.aclose()


async def test_a_shared_slot_admits_at_most_its_limit_across_processes(redis_url, redis_prefix):
    clients = await _clients(redis_url, 2)
    holding = 0
    most = 0

    async def hold(limits: SendLimits) -> None:
        nonlocal holding, most
        async with limits.slot("smtp:relay", 2):
            holding += 1
            most = max(most, holding)
            await asyncio.sleep(0.05)
            holding -= 1

    try:
        processes = [SendLimits(c, redis_prefix) for c in clients]
        await asyncio.gather(*(hold(processes[i % 2]) for i in range(8)))
        assert most == 2
        assert await clients[0].zcard(f"{redis_prefix}:limits:slots:smtp:relay") == 0, "every slot given back"
    finally:
        for c in clients:
            await c.aclose()


async def test_a_dead_holders_slot_frees_after_its_hold_time(redis_url, redis_prefix):
    clients = await _clients(redis_url, 2)
    try:
        dead, alive = SendLimits(clients[0], redis_prefix), SendLimits(clients[1], redis_prefix)
        held = dead.slot("webhook", 1, hold_s=1.0)
        await held.__aenter__()  # taken and never given back: the process died
        entered = asyncio.Event()

        async def wait_for_it() -> None:
            async with alive.slot("webhook", 1):
                entered.set()

        waiting = asyncio.create_task(wait_for_it())
        await asyncio.sleep(0.2)
        assert not entered.is_set(), "the slot is still held"
        await asyncio.wait_for(waiting, 5)
        assert entered.is_set()
    finally:
        for c in clients:
            await c.aclose()


def test_in_process_buckets_are_forgotten_once_refilled():
    local = LocalLimits()
    per_chat = Rate(per_s=1.0, burst=3)
    for chat in range(5_000):
        local.reserve([(f"tg:1:chat:{chat}", per_chat)])
    assert local.buckets == 5_000
    assert local.evict(now=10**9) == 0  # all refilled long ago: nothing kept


async def test_sends_go_on_within_the_process_when_redis_is_away(caplog):
    gone = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        limits = SendLimits(gone, "td")
        with caplog.at_level(logging.WARNING, logger="channels.send_limits"):
            waits = [await limits._reserve_turn([("tg:1:all", Rate(per_s=2.0, burst=1))]) for _ in range(3)]
            async with limits.slot("webhook", 1):
                pass
        assert waits[0] == 0.0 and 0.3 <= waits[1] <= 0.5 and 0.8 <= waits[2] <= 1.0  # limited all the same
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and "limiting within this process" in said[0], "said once, not per send"
    finally:
        await gone.aclose()
