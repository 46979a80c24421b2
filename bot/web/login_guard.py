"""Login throttling for the dashboard (moved out of auth so sessions and logins evolve apart)."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from typing import Any


class LoginLimiter:
    """At most `attempts` failed logins per (IP, email) in `window_s`; in process, or in Redis when configured
    so that every web process shares the count."""

    def __init__(
        self, *, attempts: int = 5, window_s: float = 900.0, redis: Any = None, prefix: str = "tierdesk"
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._redis = redis
        self._prefix = prefix
        self._local: dict[str, deque[float]] = {}

    def _key(self, ip: str, email: str) -> str:
        return hashlib.sha256(f"{ip}|{email.strip().lower()}".encode()).hexdigest()[:32]

    async def blocked(self, ip: str, email: str) -> bool:
        key = self._key(ip, email)
        if self._redis is not None:
            count = await self._redis.get(f"{self._prefix}:login:{key}")
            return int(count or 0) >= self.attempts
        hits = self._local.get(key)
        if not hits:
            return False
        cutoff = time.monotonic() - self.window_s
        while hits and hits[0] < cutoff:
            hits.popleft()
        return len(hits) >= self.attempts

    async def failed(self, ip: str, email: str) -> None:
        key = self._key(ip, email)
        if self._redis is not None:
            rkey = f"{self._prefix}:login:{key}"
            count = await self._redis.incr(rkey)
            if count == 1:
                await self._redis.expire(rkey, int(self.window_s))
            return
        if len(self._local) > 100_000:
            self._local.clear()
        self._local.setdefault(key, deque()).append(time.monotonic())

    async def succeeded(self, ip: str, email: str) -> None:
        key = self._key(ip, email)
        if self._redis is not None:
            await self._redis.delete(f"{self._prefix}:login:{key}")
        else:
            self._local.pop(key, None)
