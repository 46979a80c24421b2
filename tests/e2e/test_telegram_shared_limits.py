"""Three senders (as three worker processes would be: each its own aiogram Bot, its own Redis client) keep to
one bot's overall Telegram limit together when their limits are shared through Redis. Counted at the loopback
Bot API server: in no one-second window does it get more than the limit."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.core.messages import OutboundMessage
from channels.send_limits import SendLimits
from channels.telegram.sender import RateLimiter, TelegramSender
from tests.e2e.botapi_server import BotApiServer

PER_S = 20
MESSAGES = 45


def most_in_one_second(times: list[float]) -> int:
    """The largest number of calls inside any window of one second."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times)), default=0)


def test_most_in_one_second_counts_a_sliding_window():
    assert most_in_one_second([0.0, 0.5, 0.99, 1.0, 1.2, 3.0]) == 4  # from 0.5: 0.5, 0.99, 1.0, 1.2
    assert most_in_one_second([0.0, 0.9, 1.5, 1.8, 1.95]) == 3  # 1.95 is 1.05 s after 0.9: never four
    assert most_in_one_second([]) == 0


async def _burst(api: BotApiServer, limiters: list[RateLimiter]) -> list[float]:
    bots = [Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))) for _ in limiters]
    senders = [TelegramSender(bot, limiter) for bot, limiter in zip(bots, limiters, strict=True)]
    try:
        await asyncio.gather(*(bot.get_me() for bot in bots))  # connections open before the clock matters
        first = len(api.calls)
        await asyncio.gather(
            *(
                senders[i % len(senders)].send(OutboundMessage("telegram", str(9_100_000 + i), f"reply {i}"))
                for i in range(MESSAGES)
            )
        )
    finally:
        for bot in bots:
            await bot.session.close()
    calls = [c for c in api.calls[first:] if c.method == "sendmessage"]
    assert len(calls) == MESSAGES and all(c.status == 200 for c in calls)
    return [c.at for c in calls]


def _limiter(limits: SendLimits) -> RateLimiter:
    return RateLimiter(per_chat=1, overall=PER_S, limits=limits, bot="424242")


async def test_three_processes_keep_one_bots_overall_limit_together(redis_url, redis_prefix):
    clients = [aioredis.from_url(redis_url) for _ in range(3)]
    try:
        async with BotApiServer() as api:
            shared = await _burst(api, [_limiter(SendLimits(c, redis_prefix)) for c in clients])
            apart = await _burst(api, [_limiter(SendLimits()) for _ in clients])  # what each process did alone
    finally:
        for c in clients:
            await c.aclose()
    print(
        f"\nmost sendMessage calls in one second, three senders: shared {most_in_one_second(shared)}, "
        f"per process {most_in_one_second(apart)} (limit {PER_S})"
    )
    # turns are reserved 1/PER_S apart; a send the scheduler runs late can land closer to the next one
    assert most_in_one_second(shared) <= PER_S + 2
    assert most_in_one_second(apart) > PER_S + 2, "without sharing, the same burst goes over (the test can fail)"
