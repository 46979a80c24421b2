"""One live process per stable sender id (`outbox.sender_id`).

A sender re-sends on start what rows named after it still hold, and renews their leases while it lives: two
live processes with one id would take each other's in-doubt sends and send them twice. So a process takes a
lease on its id before anything else — a Redis key (SET NX with a TTL its heartbeat renews) when Redis is
configured, else a PostgreSQL advisory lock held by an open connection, or on an SQLite file an exclusive
`flock` on a lock file beside it — and a second live process with the same id refuses to start. After a crash the
id is free again: the Redis key lapses within `TTL_S` (at once when the dead holder ran on this host: its pid is
gone), the advisory lock goes with the dead connection, the kernel drops the flock with the dead process.

A lease found in another's hands while running (the heartbeat could not renew it in time) sets `lost`: the process
must stop sending at once, as a crash would, for the new holder is already resending this id's in-doubt rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Protocol

from bot.core.locks import RELEASE
from bot.settings import ConfigProblem, Settings
from crm_store.engine import is_sqlite, sqlite_file

log = logging.getLogger(__name__)

TTL_S = 15.0
"""A Redis lease not renewed for this long is free: the longest a restart waits for a crashed holder."""
PG_WAIT_S = 5.0
"""How long a start waits for PostgreSQL to notice that the connection holding the lock is dead."""

_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return '' end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return '' end
return v
"""
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0
"""


class SenderTaken(ConfigProblem):
    """Another live process runs with this sender id."""


class _Lease(Protocol):
    async def take(self) -> str:
        """Empty when this process holds the lease now; else who holds it."""

    async def renew(self) -> str:
        """Empty when the lease is still ours (or taken back); else who holds it now."""

    async def release(self) -> None: ...


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def dead_here(holder: str) -> bool:
    """A holder "host|pid|token" that ran on this host and whose process is gone (or is this very pid: a
    container restarted with its old hostname and pid)."""
    host, _, rest = holder.partition("|")
    pid = rest.partition("|")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return int(pid) == os.getpid() or _pid_gone(int(pid))


def describe(holder: str) -> str:
    host, _, rest = holder.partition("|")
    return f"process {rest.partition('|')[0]} on {host}" if rest else holder


class RedisLease:
    def __init__(self, redis: Any, key: str, ttl_s: float = TTL_S) -> None:
        self.redis, self.key, self.ttl_ms = redis, key, int(ttl_s * 1000)
        self.me = f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(4)}"

    async def take(self) -> str:
        if await self.redis.set(self.key, self.me, nx=True, px=self.ttl_ms):
            return ""
        holder = await self.redis.get(self.key)
        holder = holder.decode() if isinstance(holder, bytes) else holder
        if holder is None or holder == self.me:
            return await self.renew()
        if dead_here(holder) and await self.redis.eval(_SWAP, 1, self.key, holder, self.me, self.ttl_ms):
            log.info("sender lease %s: its holder (%s) is gone; taking it over", self.key, describe(holder))
            return ""
        return describe(holder)

    async def renew(self) -> str:
        holder = await self.redis.eval(_RENEW, 1, self.key, self.me, self.ttl_ms)
        holder = holder.decode() if isinstance(holder, bytes) else holder
        return describe(holder) if holder else ""

    async def release(self) -> None:
        await self.redis.eval(RELEASE, 1, self.key, self.me)
        await self.redis.aclose()


class PgLease:
    def __init__(self, url: str, name: str) -> None:
        from crm_store.sender_lock import NamedLock

        self.lock = NamedLock(url, name, application_name=f"tierdesk {socket.gethostname()} pid {os.getpid()}")

    async def take(self) -> str:
        if await self.lock.take():
            return ""
        return await self.lock.holder() or "another session"

    async def renew(self) -> str:
        with contextlib.suppress(Exception):  # the connection was lost: take the lock again on a new one
            if await self.lock.held():
                return ""
        return await self.take()

    async def release(self) -> None:
        await self.lock.release()


class FileLease:
    """An exclusive flock on `path`: what one SQLite file's processes share. The file records the holder's pid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    async def take(self) -> str:
        if self.fd is not None:
            return ""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            return describe(holder) if holder else f"the holder of {self.path.name}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()}|{os.getpid()}|file".encode(), 0)
        self.fd = fd
        return ""

    async def renew(self) -> str:
        return await self.take()  # nobody can take a held flock from us

    async def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the lock


class SenderGuard:
    """Takes the lease on `start()` (waiting up to `wait_s` for a crashed holder's to lapse), renews it every
    third of `ttl_s`, gives it back on `stop()`."""

    def __init__(self, sender_id: str, lease: _Lease, *, wait_s: float, ttl_s: float = TTL_S) -> None:
        self.sender_id, self.lease, self.wait_s, self.ttl_s = sender_id, lease, wait_s, ttl_s
        self._task: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()
        """Set when another process holds the lease now: this one must stop sending at once."""

    async def start(self) -> None:
        deadline = time.monotonic() + self.wait_s
        holder = await self.lease.take()
        if holder:
            log.info(
                "sender id %r is held by %s; waiting up to %.0fs for it to lapse", self.sender_id, holder, self.wait_s
            )
        while holder and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            holder = await self.lease.take()
        if holder:
            await self._close()
            raise SenderTaken(
                f"another live process runs with outbox sender id {self.sender_id!r} ({holder}); give each "
                "process its own TIERDESK_OUTBOX__SENDER_ID (two with one id would send each other's replies twice)"
            )
        self._task = asyncio.create_task(self._heartbeat(), name="sender-lease")

    async def _heartbeat(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                holder = await self.lease.renew()
            except Exception as exc:  # Redis or PostgreSQL away: keep trying, say it once
                if not failing:
                    log.warning("cannot renew the lease on sender id %r (%s); retrying", self.sender_id, exc)
                failing = True
                continue
            failing = False
            if holder:
                log.critical(
                    "the lease on sender id %r is now held by %s, which resends this id's unconfirmed replies: "
                    "stopping at once so that none is sent twice", self.sender_id, holder
                )
                self.lost.set()
                return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    async def _close(self) -> None:
        try:
            await self.lease.release()
        except Exception as exc:  # the lease lapses by itself
            log.warning("could not give back the lease on sender id %r (%s)", self.sender_id, exc)


def sender_guard(settings: Settings) -> SenderGuard | None:
    """The guard for this process's stable sender id; None when it has none (a random one is never shared) or
    its database lives in memory."""
    sender_id = settings.outbox.sender_id
    if not sender_id:
        return None
    if settings.redis_url:
        import redis.asyncio as aioredis

        key = f"{settings.redis_prefix}:sender:{sender_id}"
        return SenderGuard(sender_id, RedisLease(aioredis.Redis.from_url(settings.redis_url), key), wait_s=TTL_S + 1)
    if is_sqlite(settings.database_url):
        path = sqlite_file(settings.database_url)
        if path is None:  # an in-memory database has one process by definition
            return None
        lock = path.with_name(f"{path.name}.sender-{sender_id}.lock")
        return SenderGuard(sender_id, FileLease(lock), wait_s=1.0)
    name = f"tierdesk sender {settings.database_schema or ''}:{sender_id}"
    return SenderGuard(sender_id, PgLease(settings.database_url, name), wait_s=PG_WAIT_S)
