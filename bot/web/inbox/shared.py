"""What the inbox's web processes share: who is viewing which ticket, and which form keys are being posted.

Each has one interface and two stores, chosen when the web app first needs them: in this process's memory
(the embedded default, one process) or in Redis when it is configured, so agents on different processes see
each other and a double click landing on two processes runs once. Redis keys expire: a viewer is kept a few
seconds beyond its heartbeat (a process that dies takes its viewers with it), a form key as long as a post
may take, or a day once written."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any, Protocol

from bot.core.locks import RELEASE

BEAT_S = 5.0
"""How often a process renews the viewers it holds."""
PRESENCE_TTL_S = BEAT_S + 3.0
FORM_HOLD_S = 60.0
"""How long a form key is held while its post runs (longer than any post takes)."""
FORM_DONE_S = 86_400.0
"""How long a written form key is answered from Redis (the database keeps it for good)."""

# Presence in Redis: one sorted set per ticket; a member is "<viewer token>|<name>", scored by when it lapses
# (in Redis's own clock, so machines' clocks never disagree).
_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""
)
_READ = (
    _NOW
    + """
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  out[i] = redis.call('ZRANGE', key, 0, -1)
end
return out
"""
)


class Presence(Protocol):
    """Who has which ticket open. `who` is one open page (unique); `name` is what others are shown."""

    async def join(self, ticket_id: int, who: str, name: str) -> None: ...
    async def leave(self, ticket_id: int, who: str, name: str) -> None: ...
    async def renew(self, viewing: Iterable[tuple[int, str, str]]) -> None: ...
    async def viewers(self, ticket_ids: list[int]) -> dict[int, list[str]]: ...


class FormClaims(Protocol):
    """Form keys being posted: `claim` is True for the one post that may run; `finish` releases a key whose
    post wrote nothing (so posting it again runs again) or keeps a written one."""

    async def claim(self, key: str) -> bool: ...
    async def finish(self, key: str, *, written: bool) -> None: ...


def new_viewer_token() -> str:
    return secrets.token_hex(8)


class LocalPresence:
    def __init__(self) -> None:
        self._viewing: dict[int, dict[str, str]] = {}

    async def join(self, ticket_id: int, who: str, name: str) -> None:
        self._viewing.setdefault(ticket_id, {})[who] = name

    async def leave(self, ticket_id: int, who: str, name: str) -> None:
        pages = self._viewing.get(ticket_id, {})
        pages.pop(who, None)
        if not pages:
            self._viewing.pop(ticket_id, None)

    async def renew(self, viewing: Iterable[tuple[int, str, str]]) -> None:
        return None  # nothing lapses in one process: a page leaves when its stream ends

    async def viewers(self, ticket_ids: list[int]) -> dict[int, list[str]]:
        return {t: sorted(set(self._viewing.get(t, {}).values())) for t in ticket_ids}


class LocalFormClaims:
    def __init__(self) -> None:
        self._in_flight: set[str] = set()

    async def claim(self, key: str) -> bool:
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        return True

    async def finish(self, key: str, *, written: bool) -> None:
        self._in_flight.discard(key)  # the database answers for a written key from now on


class RedisPresence:
    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self._renew = redis.register_script(_RENEW)
        self._read = redis.register_script(_READ)

    def _key(self, ticket_id: int) -> str:
        return f"{self.prefix}:inbox:viewing:{ticket_id}"

    async def join(self, ticket_id: int, who: str, name: str) -> None:
        await self.renew([(ticket_id, who, name)])

    async def leave(self, ticket_id: int, who: str, name: str) -> None:
        await self.redis.zrem(self._key(ticket_id), f"{who}|{name}")

    async def renew(self, viewing: Iterable[tuple[int, str, str]]) -> None:
        rows = list(viewing)
        if rows:
            ttl_ms = int(PRESENCE_TTL_S * 1000)
            await self._renew(keys=[self._key(t) for t, _, _ in rows], args=[ttl_ms, *(f"{w}|{n}" for _, w, n in rows)])

    async def viewers(self, ticket_ids: list[int]) -> dict[int, list[str]]:
        if not ticket_ids:
            return {}
        found = await self._read(keys=[self._key(t) for t in ticket_ids])
        return {
            t: sorted({_text(m).split("|", 1)[-1] for m in members})
            for t, members in zip(ticket_ids, found, strict=True)
        }


class RedisFormClaims:
    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self._release = redis.register_script(RELEASE)
        self._held: dict[str, str] = {}

    def _key(self, key: str) -> str:
        return f"{self.prefix}:inbox:form:{key}"

    async def claim(self, key: str) -> bool:
        token = secrets.token_hex(8)
        if not await self.redis.set(self._key(key), token, nx=True, px=int(FORM_HOLD_S * 1000)):
            return False
        self._held[key] = token
        return True

    async def finish(self, key: str, *, written: bool) -> None:
        token = self._held.pop(key, None)
        if token is None:
            return
        if written:
            await self.redis.set(self._key(key), "written", xx=True, px=int(FORM_DONE_S * 1000))
        else:
            await self._release(keys=[self._key(key)], args=[token])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
