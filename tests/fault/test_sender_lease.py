"""One live process per outbox sender id, with real `tierdesk` processes on a private PostgreSQL and Redis: a
second process with the id of a live one refuses to start (exit 2, with the reason), while a restart after a
kill -9 starts normally — at once when the dead holder ran on this host, after its lease lapsed when it did
not — and a process that finds its id taken while it runs stops at once (exit 3) instead of sending on.
With Redis the lease is a key renewed by a heartbeat; without, a PostgreSQL advisory lock."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bot.core.sender_lease import TTL_S
from bot.runner import EXIT_SENDER_LOST
from crm_store.engine import upgrade
from tests.fault.services import PostgresServer, RedisServer

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "tdlease"
SENDER = "lease-worker-1"
START_S = 120
"""A process's start (its imports) takes seconds on an idle machine of two cores, far more on a busy one."""
RUNNING = "tierdesk running with channels"
REFUSED = f"another live process runs with outbox sender id {SENDER!r}"


@dataclass
class Processes:
    env: dict[str, str]
    tmp: Path
    command: str
    started: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def start(self) -> tuple[subprocess.Popen, Path]:
        log = self.tmp / f"{self.command}-{len(self.started) + 1}.log"
        with open(log, "w") as out:  # the process writes it
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli.main", self.command],
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((proc, log))
        return proc, log

    def wait_running(self, proc: subprocess.Popen, log: Path) -> float:
        started = time.monotonic()
        while RUNNING not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() - started < START_S, log.read_text(errors="replace")[-3000:]
            time.sleep(0.1)
        return time.monotonic() - started

    def stop_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)


def base_env(pg: PostgresServer, tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # the code of this checkout, whatever is installed
        "TIERDESK_DATABASE_URL": pg.url,
        "TIERDESK_CHANNELS": "[]",
        "TIERDESK_WEB__ENABLED": "false",
        "TIERDESK_NLU__ENABLED": "false",
        "TIERDESK_OUTBOX__SENDER_ID": SENDER,
        "TIERDESK_STATE_DIR": str(tmp / "state"),
    }


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer.create()
    server.start()
    try:
        asyncio.run(upgrade(server.url))
        yield server
    finally:
        server.destroy()


def refuse_then_restart(procs: Processes, after_kill: Callable[[int], None] = lambda pid: None) -> subprocess.Popen:
    """A live holder, a second process refused, then the holder killed -9 and a restart that starts."""
    first, first_log = procs.start()
    procs.wait_running(first, first_log)
    second, second_log = procs.start()
    assert second.wait(START_S) == 2, second_log.read_text(errors="replace")[-3000:]
    assert REFUSED in second_log.read_text(errors="replace"), second_log.read_text(errors="replace")[-3000:]
    assert "Traceback" not in second_log.read_text(errors="replace")
    assert first.poll() is None, "the live holder runs on"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    after_kill(first.pid)
    third, third_log = procs.start()
    procs.wait_running(third, third_log)
    return third


def test_with_redis_a_live_id_is_refused_and_a_crashed_one_is_taken_over(pg: PostgresServer, tmp_path: Path):
    rd = RedisServer.create()
    rd.start()
    env = {**base_env(pg, tmp_path), "TIERDESK_REDIS_URL": rd.url, "TIERDESK_REDIS_PREFIX": PREFIX}
    env["TIERDESK_DISPATCH__INGEST"] = "stream"
    procs = Processes(env, tmp_path, "worker")
    client = redis.Redis.from_url(rd.url)
    key = f"{PREFIX}:sender:{SENDER}"
    try:

        def fresh_lease_of(pid: int) -> None:  # as if the restart came before the dead holder's lease lapsed
            client.set(key, f"{socket.gethostname()}|{pid}|dead", px=600_000)

        third = refuse_then_restart(procs, fresh_lease_of)
        _, log = procs.started[-1]
        assert "is gone; taking it over" in log.read_text(errors="replace"), "the dead holder ran on this host"
        holder = client.get(key).decode()
        assert holder.split("|")[1] == str(third.pid) and 0 < client.pttl(key) <= TTL_S * 1000

        third.send_signal(signal.SIGTERM)  # a clean stop gives the lease back
        assert third.wait(60) == 0
        assert client.get(key) is None

        # a holder on another host, alive (renewing) until the new process waits for it, then gone
        client.set(key, "another-host|4242|feedbeef", px=3000)
        fourth, fourth_log = procs.start()
        while "waiting up to" not in fourth_log.read_text(errors="replace"):
            assert fourth.poll() is None, fourth_log.read_text(errors="replace")[-3000:]
            client.set(key, "another-host|4242|feedbeef", px=3000)
            time.sleep(0.2)
        procs.wait_running(fourth, fourth_log)
        assert client.get(key).decode().split("|")[1] == str(fourth.pid)

        # another process took the id while this one could not renew: it stops at once, exit 3, saying why
        client.set(key, "another-host|4343|thief", px=600_000)
        assert fourth.wait(TTL_S + 30) == EXIT_SENDER_LOST, fourth_log.read_text(errors="replace")[-3000:]
        text = fourth_log.read_text(errors="replace")
        assert "is now held by process 4343 on another-host" in text and "stopping at once" in text
        assert "draining the outbox" not in text.split("is now held by")[1], "nothing is sent on the way out"
        assert client.get(key) == b"another-host|4343|thief", "the new holder keeps its lease"
    finally:
        procs.stop_all()
        client.close()
        rd.destroy()


def test_without_redis_the_lock_is_a_postgresql_advisory_lock(pg: PostgresServer, tmp_path: Path):
    procs = Processes(base_env(pg, tmp_path), tmp_path, "run")
    try:
        refuse_then_restart(procs)
        _, refused_log = procs.started[1]
        assert "PostgreSQL backend" in refused_log.read_text(errors="replace"), "the message names the holder"
    finally:
        procs.stop_all()


def test_other_sender_ids_run_side_by_side(pg: PostgresServer, tmp_path: Path):
    env = base_env(pg, tmp_path)
    one = Processes({**env, "TIERDESK_OUTBOX__SENDER_ID": "side-1"}, tmp_path, "run")
    two = Processes({**env, "TIERDESK_OUTBOX__SENDER_ID": "side-2"}, tmp_path / "two", "run")
    (tmp_path / "two").mkdir()
    try:
        for procs in (one, two):
            procs.wait_running(*procs.start())
        assert all(proc.poll() is None for procs in (one, two) for proc, _ in procs.started)
    finally:
        one.stop_all()
        two.stop_all()
