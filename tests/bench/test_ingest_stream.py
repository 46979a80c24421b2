"""The stream bench's own readings: a worker's CPU time from /proc, counts asked on a kept engine, and the poller
that stops the clock."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import update

from bench.ingest import counts
from bench.ingest_stream import cpu_of, cpu_seconds, cpu_since, wait_done
from bot.core.ingest import StreamIngest
from bot.core.messages import utcnow
from bot.core.outbound import outbox_row
from crm_store.engine import make_engine
from crm_store.models import OutboxItem
from crm_store.repositories import outbox as outbox_repo


def test_cpu_seconds_follow_the_process_cpu_time():
    before, clock = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - clock < 0.3:  # busy, not sleeping: only CPU time counts
        sum(range(10_000))
    used, asked = cpu_seconds(os.getpid()) - before, time.process_time() - clock
    assert abs(used - asked) < 0.05  # /proc counts in clock ticks (10 ms)
    idle = cpu_seconds(os.getpid())
    time.sleep(0.2)
    assert cpu_seconds(os.getpid()) - idle < 0.05


def test_cpu_of_a_command_finds_its_processes_and_counts_new_ones_whole():
    name = Path(f"/proc/{os.getpid()}/stat").read_text().partition("(")[2].rpartition(")")[0]
    before = cpu_of(name)
    assert os.getpid() in before and cpu_of("nonexistent-server") == {}
    clock = time.process_time()
    while time.process_time() - clock < 0.3:
        sum(range(10_000))
    after = cpu_of(name)
    mine = cpu_since({os.getpid(): before[os.getpid()]}, {os.getpid(): after[os.getpid()]})
    assert 0.25 <= mine < 0.4
    assert cpu_since({}, {1: 2.0, 2: 0.5}) == 2.5  # started during the window: all of it was in the window


async def test_counts_on_a_kept_engine_leave_it_open_for_the_next_poll(db):
    engine = make_engine(db.url, schema=db.schema)
    try:
        first = await counts(db.url, db.schema, engine)
        second = await counts(db.url, db.schema, engine)  # a disposed engine would reconnect: still counted right
        assert first == second == {"stored": 0}
        assert engine.pool.checkedin() == 1  # the one connection stayed in the pool between polls
    finally:
        await engine.dispose()


async def test_the_poller_waits_for_an_empty_stream_then_for_the_last_reply(db, redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    ingest = StreamIngest(client, redis_prefix)
    try:
        entry = await client.xadd(ingest.stream, {"m": "{}"})
        async with db.sessions() as s, s.begin():
            row = outbox_row(key="k1", channel="memory", recipient="1", text="hi", author="bot", at=utcnow())
            await outbox_repo.enqueue(s, [row])
        poller = asyncio.create_task(wait_done(db.url, db.schema, client, ingest, [], within=30, every=0.01))
        await asyncio.sleep(0.3)
        assert not poller.done()  # an entry not stored yet

        emptied = time.perf_counter()
        await client.xdel(ingest.stream, entry)
        await asyncio.sleep(0.3)
        assert not poller.done()  # every message stored, a reply not sent yet

        async with db.sessions() as s, s.begin():
            await s.execute(update(OutboxItem).values(status="sent"))
        stored_at = await asyncio.wait_for(poller, 10)
        assert emptied <= stored_at < emptied + 0.3  # when the stream was found empty, not when the reply went
    finally:
        await client.aclose()
