"""Send limits that hold for the whole deployment, not per process.

Telegram counts messages per bot and per chat whatever process sends them, and an SMTP relay or a webhook
receiver sees every process's connections. So rates and concurrency live in Redis when there is one, and every
process takes its turn there:

- rates are GCRA token buckets (`rate` a second with bursts of `burst`), one small Lua script that *reserves*
  a turn and answers how long to wait for it: one round trip per message, no polling. Keys carry a TTL equal to
  the time their bucket needs to refill, so a chat served once is forgotten seconds later.
- concurrency is a sorted set of holders with deadlines: a holder that dies frees its slot after `hold_s`.

Without Redis (the embedded default) the same limits hold in-process, with the same expiry: idle buckets are
evicted. When Redis fails, sends go on under the in-process limits (logged once) rather than stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local delay = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait > delay then delay = wait end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
end
return string.format('%.6f', delay)
"""
"""Reserve one turn in every bucket of KEYS (ARGV: interval, tolerance per key); returns the seconds to wait."""

TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""
"""Take a slot of KEYS[1] (ARGV: limit, holder token, hold ms) if fewer than `limit` live holders have one."""

SLOT_POLL_S = 0.02
EVICT_EVERY = 1024


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_s` turns a second on average, up to `burst` at once."""

    per_s: float
    burst: float = 1.0

    @property
    def interval(self) -> float:
        return 1.0 / self.per_s

    @property
    def tolerance(self) -> float:
        return max(self.burst - 1.0, 0.0) * self.interval


def gcra_reserve(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """One turn of a GCRA bucket whose theoretical arrival time is `tat`: (seconds to wait, the new tat)."""
    start = max(tat if tat is not None else now, now)
    return max(start - rate.tolerance - now, 0.0), start + rate.interval


class LocalLimits:
    """The same limits within one process; buckets that have refilled are dropped now and then."""

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._reserved = 0

    def reserve(self, buckets: list[tuple[str, Rate]]) -> float:
        now = time.monotonic()
        delay = 0.0
        for key, rate in buckets:
            wait, self._tats[key] = gcra_reserve(self._tats.get(key), now, rate)
            delay = max(delay, wait)
        self._reserved += 1
        if self._reserved % EVICT_EVERY == 0:
            self.evict(now)
        return delay

    def evict(self, now: float | None = None) -> int:
        """Forget buckets that are full again (the same as a new one); returns how many are left."""
        now = time.monotonic() if now is None else now
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        return len(self._tats)

    @property
    def buckets(self) -> int:
        return len(self._tats)

    @contextlib.asynccontextmanager
    async def slot(self, name: str, limit: int, hold_s: float) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(name, asyncio.Semaphore(max(limit, 1)))
        async with semaphore:
            yield


class SendLimits:
    """Rates and concurrency slots for channels' sends: in Redis when given a client, else in-process."""

    def __init__(self, redis: Any = None, prefix: str = "tierdesk") -> None:
        self.redis = redis
        self.prefix = f"{prefix}:limits"
        self.local = LocalLimits()
        self._reserve = redis.register_script(RESERVE) if redis is not None else None
        self._take = redis.register_script(TAKE_SLOT) if redis is not None else None
        self._redis_failing = False

    @property
    def shared(self) -> bool:
        return self.redis is not None

    async def wait(self, *buckets: tuple[str, Rate]) -> float:
        """Take a turn in every bucket (waiting for the latest of them); returns the seconds waited."""
        delay = await self._reserve_turn(list(buckets))
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    async def _reserve_turn(self, buckets: list[tuple[str, Rate]]) -> float:
        if self._reserve is not None:
            keys = [f"{self.prefix}:{key}" for key, _ in buckets]
            args = [value for _, rate in buckets for value in (f"{rate.interval:.6f}", f"{rate.tolerance:.6f}")]
            try:
                delay = float(await self._reserve(keys=keys, args=args))
            except Exception as exc:  # Redis is away: keep sending, within this process's share
                self._note_redis_failure(exc)
            else:
                self._note_redis_back()
                return delay
        return self.local.reserve(buckets)

    @contextlib.asynccontextmanager
    async def slot(self, name: str, limit: int, hold_s: float = 120.0) -> AsyncIterator[None]:
        """At most `limit` holders of `name` at once across processes; a dead holder's slot frees after `hold_s`."""
        if self._take is None:
            async with self.local.slot(name, limit, hold_s):
                yield
            return
        key, token = f"{self.prefix}:slots:{name}", secrets.token_hex(8)
        taken = await self._take_slot(key, token, limit, hold_s)
        if not taken:
            async with self.local.slot(name, limit, hold_s):
                yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await self.redis.zrem(key, token)

    async def _take_slot(self, key: str, token: str, limit: int, hold_s: float) -> bool:
        """Wait for a shared slot; False when Redis fails (the caller falls back to the in-process one)."""
        assert self._take is not None
        while True:
            try:
                if await self._take(keys=[key], args=[max(limit, 1), token, int(hold_s * 1000)]):
                    self._note_redis_back()
                    return True
            except Exception as exc:
                self._note_redis_failure(exc)
                return False
            await asyncio.sleep(SLOT_POLL_S)

    def _note_redis_failure(self, exc: Exception) -> None:
        if not self._redis_failing:
            self._redis_failing = True
            log.warning(
                "shared send limits unavailable (%s: %s); limiting within this process until Redis is back",
                type(exc).__name__,
                exc,
            )

    def _note_redis_back(self) -> None:
        if self._redis_failing:
            self._redis_failing = False
            log.warning("shared send limits back in Redis")
