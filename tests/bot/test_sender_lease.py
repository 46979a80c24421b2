"""The sender-id lease in one process, on the real Redis and PostgreSQL: a second holder is refused and told
who holds it, the heartbeat takes the lease back after Redis lost it (restarted empty) and after PostgreSQL
dropped the lock's connection, and says so (and sets `lost`) when another process took it meanwhile; on an SQLite
file a flock does the same job across real processes.
(`tests/fault/test_sender_lease.py` runs it with real `tierdesk` processes, kill -9 included.)"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from bot.core.sender_lease import FileLease, PgLease, RedisLease, SenderGuard, SenderTaken, dead_here, sender_guard
from bot.settings import Settings
from crm_store.engine import make_engine
from tests.conftest import PG_URL, need_service


def guard(lease, sender: str = "w1") -> SenderGuard:
    return SenderGuard(sender, lease, wait_s=0.6, ttl_s=3)


async def test_redis_a_live_holder_is_refused_and_the_id_is_free_after_a_clean_stop(redis_url, redis_prefix):
    key = f"{redis_prefix}:sender:w1"
    client = aioredis.from_url(redis_url)
    try:
        await client.set(key, f"{socket.gethostname()}|1|abcd", px=10_000)  # pid 1 of this host lives
        with pytest.raises(SenderTaken, match=r"sender id 'w1' \(process 1 on "):
            await guard(RedisLease(aioredis.from_url(redis_url), key)).start()
        assert await client.get(key) == f"{socket.gethostname()}|1|abcd".encode(), "a refused start takes nothing"
        await client.delete(key)  # its holder stopped cleanly
        holder = guard(RedisLease(aioredis.from_url(redis_url), key))
        await holder.start()
        assert (await client.get(key)).decode().split("|")[1] == str(os.getpid())
        await holder.stop()
        assert await client.get(key) is None
    finally:
        await client.aclose()


async def test_redis_the_heartbeat_takes_a_lost_lease_back_and_reports_a_thief(redis_url, redis_prefix):
    key = f"{redis_prefix}:sender:w1"
    client = aioredis.from_url(redis_url)
    lease = RedisLease(aioredis.from_url(redis_url), key)
    try:
        assert await lease.take() == ""
        await client.delete(key)  # Redis restarted without persistence
        assert await lease.renew() == "" and await client.get(key) == lease.me.encode()
        await client.set(key, "elsewhere|77|abcd", px=10_000)  # another process took it while we could not renew
        assert await lease.renew() == "process 77 on elsewhere"
        await lease.release()
        assert await client.get(key) == b"elsewhere|77|abcd", "release gives back only our own lease"
    finally:
        await client.aclose()


def test_a_holder_is_dead_here_only_on_this_host_with_its_pid_gone() -> None:
    host = socket.gethostname()
    assert dead_here(f"{host}|{os.getpid()}|x"), "our own pid: a restarted container with its old pid"
    assert not dead_here(f"{host}|1|x"), "pid 1 lives"
    assert not dead_here(f"another-{host}|999999|x") and not dead_here("garbage")
    assert dead_here(f"{host}|{2**22 + 12345}|x"), "a pid no process has"


@pytest.fixture
def pg_url() -> str:
    if not PG_URL:
        need_service("PostgreSQL", "TIERDESK_TEST_POSTGRES_URL is not set")
    return PG_URL


async def test_postgresql_lock_is_refused_names_its_holder_and_comes_back_after_a_lost_connection(pg_url, caplog):
    name = f"tierdesk sender test:{uuid.uuid4().hex}"
    first, second = PgLease(pg_url, name), PgLease(pg_url, name)
    holder = guard(first)
    await holder.start()
    try:
        with pytest.raises(SenderTaken, match=r"PostgreSQL backend \d+"):
            await guard(second).start()
        assert first.lock.conn is not None
        backend = await first.lock.conn.scalar(text("SELECT pg_backend_pid()"))
        await first.lock.conn.commit()
        engine = make_engine(pg_url)
        async with engine.connect() as conn:  # the server drops the lock's connection
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            await conn.commit()
        await engine.dispose()
        assert await first.renew() == "", "taken again on a new connection"
        other = PgLease(pg_url, name)
        assert "PostgreSQL backend" in await other.take()
        await other.release()
    finally:
        await holder.stop()
    with caplog.at_level(logging.INFO):
        after = guard(PgLease(pg_url, name))
        await after.start()
        await after.stop()


def _hold_in_child(lock: Path) -> subprocess.Popen:
    """A real second process holding the file lease until killed."""
    code = (
        "import asyncio, sys, time\n"
        "from pathlib import Path\n"
        "from bot.core.sender_lease import FileLease\n"
        f"lease = FileLease(Path({str(lock)!r}))\n"
        "assert asyncio.run(lease.take()) == ''\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


async def test_sqlite_file_lease_refuses_a_second_live_process_and_frees_on_kill_9(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/desk.db", outbox={"sender_id": "w1"})
    own = sender_guard(settings)
    assert own is not None and isinstance(own.lease, FileLease)
    lock = own.lease.path
    assert lock == (tmp_path / "desk.db.sender-w1.lock").resolve()
    child = _hold_in_child(lock)
    try:
        with pytest.raises(SenderTaken, match=rf"sender id 'w1' \(process {child.pid} on "):
            await own.start()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    guard_after = sender_guard(settings)
    await guard_after.start()  # the kernel dropped the dead holder's lock
    try:
        assert lock.read_text().split("|")[1] == str(os.getpid())
        with pytest.raises(SenderTaken):
            await sender_guard(settings).start()  # a second holder in this process is refused as well
    finally:
        await guard_after.stop()
    assert lock.read_text() == "", "a clean stop leaves no holder named"
    in_memory = Settings(database_url="sqlite+aiosqlite:///:memory:", outbox={"sender_id": "w1"})
    assert sender_guard(in_memory) is None


async def test_a_lease_found_in_another_process_hands_sets_lost(redis_url, redis_prefix, caplog) -> None:
    key = f"{redis_prefix}:sender:w9"
    client = aioredis.from_url(redis_url)
    holder = SenderGuard("w9", RedisLease(aioredis.from_url(redis_url), key), wait_s=0.6, ttl_s=0.6)
    try:
        with caplog.at_level(logging.CRITICAL):
            await holder.start()
            assert not holder.lost.is_set()
            await client.set(key, "elsewhere|77|abcd", px=10_000)  # taken while our renewals did not get through
            await asyncio.wait_for(holder.lost.wait(), 5)
        assert "held by process 77 on elsewhere" in caplog.text and "stopping at once" in caplog.text
    finally:
        await holder.stop()
        assert await client.get(key) == b"elsewhere|77|abcd", "stopping gives back nothing that is not ours"
        await client.delete(key)
        await client.aclose()
