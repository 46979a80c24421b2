"""Replies through crashes and outages, counted end to end: a real `tierdesk worker` process on a private
PostgreSQL and Redis consumes a burst of Telegram messages from the inbound stream and answers each through the
Bot-API test server, which counts what it received. Then a fault mid-burst:

- kill -9 of the worker, restarted at once with the same sender id: every message stored once, and at most
  `outbox.concurrency` customers answered twice (the sends delivered but not yet recorded at that instant);
- PostgreSQL stopped for 10 s: every message stored once and nobody answered twice.

Each test prints its row of the fault table (sent / stored / lost / duplicate rows / double replies / recovery;
`pytest -s` shows them, and TIERDESK_FAULT_LOGS=1 the worker's log too).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.core.ingest import StreamIngest
from bot.core.messages import InboundMessage
from channels.telegram.updates import message_external_id
from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact
from tests.e2e.botapi_server import BotApiServer
from tests.fault.services import PostgresServer, RedisServer

pytestmark = [pytest.mark.timeout(400), pytest.mark.asyncio(loop_scope="module")]

CUSTOMERS = 240
CONCURRENCY = 8
WITHIN_S = 180
"""How long a burst may take to be answered: a worker's start (its imports) takes 10 s on an idle machine of
two cores and over 40 s on a busy one."""
PREFIX = "tdfault"


@dataclass
class Stack:
    """One worker process against the private servers, fed from this test process; shared by the tests of this
    module (starting a worker is the slow part), each with customers of its own."""

    pg: PostgresServer
    redis: RedisServer
    api: BotApiServer
    tmp: Path
    worker: subprocess.Popen | None = None
    starts: int = 0
    first_chat: int = 5_000_001

    @property
    def chats(self) -> range:
        return range(self.first_chat, self.first_chat + CUSTOMERS)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "TIERDESK_DATABASE_URL": self.pg.url,
            "TIERDESK_REDIS_URL": self.redis.url,
            "TIERDESK_REDIS_PREFIX": PREFIX,
            "TIERDESK_DISPATCH__INGEST": "stream",
            "TIERDESK_DISPATCH__STREAM_CLAIM_IDLE_S": "2",
            "TIERDESK_CHANNELS": '["telegram"]',
            "TIERDESK_TELEGRAM__TOKEN": self.api.token,
            "TIERDESK_TELEGRAM__API_SERVER": self.api.base_url,
            "TIERDESK_TELEGRAM__OVERALL_PER_S": "200",
            "TIERDESK_OUTBOX__CONCURRENCY": str(CONCURRENCY),
            "TIERDESK_OUTBOX__SENDER_ID": "fault-worker-1",
            "TIERDESK_NLU__ENABLED": "false",
            "TIERDESK_STATE_DIR": str(self.tmp / "state"),
        }

    def start_worker(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"worker-{self.starts}.log", "w")  # the process writes it
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "worker"],
            cwd=self.tmp,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)

    def stop_worker(self) -> str:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        return self.logs()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log")))

    def replies(self) -> Counter[int]:
        """Messages the bot got through to each of this burst's customers."""
        chats = self.chats
        return Counter(
            c.result["chat"]["id"]
            for c in self.api.calls_of("sendMessage")
            if c.status == 200 and c.result["chat"]["id"] in chats
        )

    async def publish_burst(self) -> None:
        client = aioredis.from_url(self.redis.url)
        try:
            front = StreamIngest(client, PREFIX)  # what `tierdesk run`'s Telegram poller does in stream mode
            await front.ensure_group()
            for i, chat in enumerate(self.chats):
                await front.publish(
                    InboundMessage.build(
                        channel="telegram",
                        external_id=message_external_id(chat, 1),
                        sender=str(chat),
                        text=f"where is my order {i}?",
                        sender_name=f"Customer {i}",
                    )
                )
        finally:
            await client.aclose()

    async def wait_replies(self, at_least: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.replies()) < at_least:
            assert self.worker is not None and self.worker.poll() is None, self.logs()[-3000:]
            assert time.monotonic() < deadline, f"{len(self.replies())} of {at_least} answered\n{self.logs()[-3000:]}"
            await asyncio.sleep(0.05)

    async def counts(self) -> dict[str, int]:
        engine = make_engine(self.pg.url)
        try:
            async with make_sessionmaker(engine)() as s:
                per_address = (
                    await s.execute(
                        select(Contact.direction, Contact.address, func.count())
                        .where(Contact.address.in_([str(chat) for chat in self.chats]))
                        .group_by(Contact.direction, Contact.address)
                    )
                ).all()
        finally:
            await engine.dispose()
        replies = self.replies()
        return {
            "sent": CUSTOMERS,
            "stored": sum(n for d, _, n in per_address if d == "in"),
            "duplicate rows": sum(n - 1 for _, _, n in per_address if n > 1),
            "answered": len(replies),
            "double replies": sum(n - 1 for n in replies.values() if n > 1),
            "replies logged": sum(n for d, _, n in per_address if d == "out"),
        }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory):
    pg = PostgresServer.create()
    rd = RedisServer.create()
    pg.start()
    rd.start()
    try:
        await upgrade(pg.url)
        async with BotApiServer() as api:
            state = Stack(pg, rd, api, tmp_path_factory.mktemp("fault"))
            try:
                yield state
            finally:
                out = state.stop_worker()
                print(out[-3000:] if os.environ.get("TIERDESK_FAULT_LOGS") else "")
    finally:
        pg.destroy()
        rd.destroy()


@pytest_asyncio.fixture(loop_scope="module")
async def burst(stack: Stack):
    """The shared stack with a running worker and customers nobody else in this module writes to."""
    stack.first_chat += 1_000
    if stack.worker is None or stack.worker.poll() is not None:
        stack.start_worker()
    return stack


def report(fault: str, counts: dict[str, int], recover_s: float) -> None:
    lost = counts["sent"] - counts["stored"]
    print(
        f"\n| {fault} | sent {counts['sent']} | stored {counts['stored']} | lost {lost} | duplicate rows "
        f"{counts['duplicate rows']} | double replies {counts['double replies']} | recovered in {recover_s:.1f} s |"
    )


async def settle(burst: Stack, within: float) -> dict[str, int]:
    """Wait until every customer is answered and every reply recorded (or `within` runs out)."""
    deadline = time.monotonic() + within
    while True:
        assert burst.worker is not None and burst.worker.poll() is None, burst.logs()[-3000:]
        counts = await burst.counts()
        if counts["answered"] == CUSTOMERS and counts["replies logged"] >= CUSTOMERS and counts["stored"] == CUSTOMERS:
            return counts
        if time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)


async def test_a_database_outage_mid_burst_answers_nobody_twice(burst: Stack):
    await burst.publish_burst()
    await burst.wait_replies(CUSTOMERS // 3, within=WITHIN_S)
    burst.pg.stop()
    await asyncio.sleep(10)
    burst.pg.start()
    back_at = time.monotonic()
    counts = await settle(burst, within=WITHIN_S)
    recover_s = time.monotonic() - back_at
    report("PostgreSQL stopped 10 s", counts, recover_s)
    assert burst.worker is not None and burst.worker.poll() is None, "the worker lived through the outage"
    assert counts["stored"] == CUSTOMERS and counts["duplicate rows"] == 0
    assert counts["answered"] == CUSTOMERS and counts["replies logged"] == CUSTOMERS
    assert counts["double replies"] == 0, counts
    assert burst.logs().count("Traceback") <= 3, "the outage is reported, not one traceback per message"


async def test_kill_9_of_a_worker_mid_burst_duplicates_at_most_the_sends_in_flight(burst: Stack):
    await burst.publish_burst()
    await burst.wait_replies(CUSTOMERS // 3, within=WITHIN_S)
    burst.kill_worker()
    killed_at = time.monotonic()
    burst.start_worker()  # the same sender id: it re-sends what it held before anything else
    counts = await settle(burst, within=WITHIN_S)
    recover_s = time.monotonic() - killed_at
    report("kill -9 worker", counts, recover_s)
    assert counts["stored"] == CUSTOMERS and counts["duplicate rows"] == 0
    assert counts["answered"] == CUSTOMERS, "every customer got an answer"
    assert counts["replies logged"] == CUSTOMERS, "every reply recorded once"
    assert counts["double replies"] <= CONCURRENCY, f"more than outbox.concurrency answered twice: {counts}"
    assert "sending them again first" in burst.logs() or counts["double replies"] == 0
