"""kill -9 of `tierdesk run` itself mid-burst, counted end to end: the real process polls the Bot-API test server
(the Telegram channel), publishes to the inbound stream of a private redis-server, stores in a private
PostgreSQL and answers through the same server. Killed while a burst is being answered, then started again
with the same sender id:

- every message Telegram delivered is stored once (what the dead process had fetched but not confirmed comes
  again, and is stored once by its external id);
- every customer is answered, at most `outbox.concurrency` of them twice (the sends delivered but not yet
  recorded at that instant, re-sent by the restarted process first).

Prints its row of the fault table (`pytest -s`; TIERDESK_FAULT_LOGS=1 shows the process's log too).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact
from tests.e2e.botapi_server import BotApiServer
from tests.fault.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 240
CONCURRENCY = 8
WITHIN_S = 180
"""How long a burst may take to be answered, a start (its imports) included: seconds on an idle machine of two
cores, over 40 s on a busy one."""
FIRST_CHAT = 7_000_001
CHATS = range(FIRST_CHAT, FIRST_CHAT + CUSTOMERS)


class RunProcess:
    """`tierdesk run` with the Telegram channel, started and killed by the test; its logs in `tmp`."""

    def __init__(self, pg: PostgresServer, rd: RedisServer, api: BotApiServer, tmp: Path) -> None:
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),  # the code of this checkout, whatever is installed
            "TIERDESK_DATABASE_URL": pg.url,
            "TIERDESK_REDIS_URL": rd.url,
            "TIERDESK_REDIS_PREFIX": "tdrunkill",
            "TIERDESK_DISPATCH__INGEST": "stream",
            "TIERDESK_DISPATCH__STREAM_CLAIM_IDLE_S": "2",
            "TIERDESK_CHANNELS": '["telegram"]',
            "TIERDESK_TELEGRAM__TOKEN": api.token,
            "TIERDESK_TELEGRAM__API_SERVER": api.base_url,
            "TIERDESK_TELEGRAM__OVERALL_PER_S": "200",
            "TIERDESK_OUTBOX__CONCURRENCY": str(CONCURRENCY),
            "TIERDESK_OUTBOX__SENDER_ID": "fault-run-1",
            "TIERDESK_NLU__ENABLED": "false",
            "TIERDESK_WEB__ENABLED": "false",
            "TIERDESK_STATE_DIR": str(tmp / "state"),
        }

    def start(self) -> None:
        self.starts += 1
        with open(self.tmp / f"run-{self.starts}.log", "w") as log:  # the process writes it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli.main", "run"],
                cwd=self.tmp,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_of_last_start(self) -> str:
        return (self.tmp / f"run-{self.starts}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("run-*.log")))


def replies(api: BotApiServer) -> Counter[int]:
    """Messages the bot got through to each customer of the burst."""
    sent = [c.result["chat"]["id"] for c in api.calls_of("sendMessage") if c.status == 200]
    return Counter(chat for chat in sent if chat in CHATS)


async def counts(pg: PostgresServer, api: BotApiServer) -> dict[str, int]:
    engine = make_engine(pg.url)
    try:
        async with make_sessionmaker(engine)() as s:
            per_address = (
                await s.execute(
                    select(Contact.direction, Contact.address, func.count())
                    .where(Contact.address.in_([str(chat) for chat in CHATS]))
                    .group_by(Contact.direction, Contact.address)
                )
            ).all()
    finally:
        await engine.dispose()
    answered = replies(api)
    return {
        "sent": CUSTOMERS,
        "stored": sum(1 for d, _, _ in per_address if d == "in"),
        "duplicate rows": sum(n - 1 for d, _, n in per_address if d == "in" and n > 1),
        "answered": len(answered),
        "double replies": sum(n - 1 for n in answered.values() if n > 1),
        "replies logged": sum(n for d, _, n in per_address if d == "out"),
    }


async def settle(run: RunProcess, pg: PostgresServer, api: BotApiServer) -> dict[str, int]:
    """Wait until every customer is answered and every reply recorded (or WITHIN_S runs out); "restart s" is how
    long the restarted process took to be running (its imports, on a busy machine)."""
    started = time.monotonic()
    deadline = started + WITHIN_S
    running_after = None
    while True:
        assert run.alive(), run.logs()[-3000:]
        if running_after is None and "tierdesk running with channels" in run.log_of_last_start():
            running_after = time.monotonic() - started
        now = await counts(pg, api)
        now["restart s"] = round(running_after or 0)
        done = now["answered"] == now["stored"] == CUSTOMERS and now["replies logged"] >= CUSTOMERS
        if done or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.2)


async def test_kill_9_of_run_mid_burst_stores_everything_once_and_duplicates_at_most_the_sends_in_flight(
    tmp_path: Path,
):
    pg, rd = PostgresServer.create(), RedisServer.create()
    pg.start()
    rd.start()
    try:
        await upgrade(pg.url)
        async with BotApiServer() as api:
            run = RunProcess(pg, rd, api, tmp_path)
            try:
                run.start()
                for i, chat in enumerate(CHATS):
                    api.user_message(api.user(chat, f"Customer {i}"), f"where is my order {i}?")
                deadline = time.monotonic() + WITHIN_S
                while len(replies(api)) < CUSTOMERS // 3:
                    assert run.alive(), run.logs()[-3000:]
                    assert time.monotonic() < deadline, f"{len(replies(api))} answered\n{run.logs()[-3000:]}"
                    await asyncio.sleep(0.02)
                run.kill()
                killed_at = time.monotonic()
                answered_before = len(replies(api))
                run.start()  # the same sender id: it re-sends what it held before anything else
                result = await settle(run, pg, api)
                recover_s = time.monotonic() - killed_at
            finally:
                run.stop()
                print(run.logs()[-3000:] if os.environ.get("TIERDESK_FAULT_LOGS") else "")
    finally:
        pg.destroy()
        rd.destroy()
    print(
        f"\n| kill -9 run | sent {CUSTOMERS} | stored {result['stored']} | lost {CUSTOMERS - result['stored']} | "
        f"duplicate rows {result['duplicate rows']} | double replies {result['double replies']} | "
        f"recovered in {recover_s:.1f} s (restart {result['restart s']} s) | answered before the kill "
        f"{answered_before} |"
    )
    assert answered_before < CUSTOMERS, "killed mid-burst"
    assert result["stored"] == CUSTOMERS and result["duplicate rows"] == 0, result
    assert result["answered"] == CUSTOMERS, f"every customer got an answer after the restart: {result}"
    assert result["replies logged"] == CUSTOMERS, f"every reply recorded once: {result}"
    assert result["double replies"] <= CONCURRENCY, f"more than outbox.concurrency answered twice: {result}"
    assert api.unconfirmed == 0, "every update confirmed to Telegram"
