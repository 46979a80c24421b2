"""Per-conversation exclusion: in-process by default, Redis when several workers share the database.

Within one process the dispatcher handles batches one after another, so messages of a conversation are already
handled in arrival order; across processes a Redis lock per conversation keeps two workers from interleaving.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
RELEASE_MANY = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then n = n + redis.call('del', key) end
end
return n
"""
"""RELEASE for many keys in one call: a batch frees a lock per conversation it handled in one round trip."""
ACQUIRE_MANY = """
local got = {}
for i, key in ipairs(KEYS) do
  if redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) then got[#got + 1] = i
  elseif ARGV[3] == '1' and redis.call('get', key) == ARGV[1] then
    redis.call('pexpire', key, ARGV[2]); got[#got + 1] = i
  end
end
return got
"""
"""SET NX PX for many keys in one call; returns the (1-based) positions of the keys it locked. With ARGV[3] '1'
the caller's own locks count as locked too (renewed): those a release left behind."""


class ConversationLocks(Protocol):
    async def acquire_many(self, keys: Iterable[str]) -> set[str]:
        """Lock as many of `keys` as possible right now; return those locked."""

    async def release_many(self, keys: Iterable[str]) -> None: ...


class LocalLocks:
    """One batcher per process handles everything in order: nothing to lock."""

    async def acquire_many(self, keys: Iterable[str]) -> set[str]:
        return set(keys)

    async def release_many(self, keys: Iterable[str]) -> None:
        return None


class RedisLocks:
    """SET NX PX locks with a token, released only by their holder (a crashed worker's lock expires)."""

    def __init__(self, client, prefix: str, ttl_ms: int = 30_000, *, reentrant: bool = False) -> None:
        """`reentrant`: a lock this holder already has counts as taken. For the dispatcher, whose batches run one
        after another, so such a lock can only be one whose release failed (Redis went away mid-batch and came
        back with its data): without it, that batch's conversations, and the whole serial batch loop behind
        them, waited out the lock's TTL (28 s of 30 after a Redis restart with AOF)."""
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = ttl_ms
        self._token = uuid.uuid4().hex
        self._reentrant = "1" if reentrant else "0"
        self._acquire = client.register_script(ACQUIRE_MANY)
        self._release = client.register_script(RELEASE_MANY)

    def _key(self, key: str) -> str:
        return f"{self._prefix}:lock:{key}"

    async def acquire_many(self, keys: Iterable[str]) -> set[str]:
        """One script call rather than a pipeline of a SET each: the same single round trip, without packing and
        parsing 200 commands in Python for every batch."""
        keys = sorted(set(keys))
        if not keys:
            return set()
        got = await self._acquire(keys=[self._key(k) for k in keys], args=[self._token, self._ttl_ms, self._reentrant])
        return {keys[int(i) - 1] for i in got}

    async def release_many(self, keys: Iterable[str]) -> None:
        """One script call for all of them: one by one, a batch of 200 conversations waited on 200 round trips,
        each behind whatever else the event loop was doing."""
        names = [self._key(key) for key in keys]
        if names:
            await self._release(keys=names, args=[self._token])


class JobTurns:
    """Scheduled jobs that must not run in two workers at once (a re-tiering run writes the tier history): one
    Redis lock per job while it runs. Without Redis there is one process, so every turn is ours."""

    def __init__(self, client: Any | None, prefix: str, ttl_s: float = 3600.0) -> None:
        self._locks = RedisLocks(client, f"{prefix}:job", int(ttl_s * 1000)) if client is not None else None

    @asynccontextmanager
    async def turn(self, job: str) -> AsyncIterator[bool]:
        """True inside when this process has the job's turn; the turn ends with the block."""
        if self._locks is None:
            yield True
            return
        held = await self._locks.acquire_many([job])
        try:
            yield job in held
        finally:
            if held:
                await self._locks.release_many(held)
