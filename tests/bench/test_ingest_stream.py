"""The stream bench's own readings: a worker's CPU time from /proc, and counts asked on an engine the poller
keeps open."""

from __future__ import annotations

import os
import time

from bench.ingest import counts
from bench.ingest_stream import cpu_seconds
from crm_store.engine import make_engine


def test_cpu_seconds_follow_the_process_cpu_time():
    before, clock = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - clock < 0.3:  # busy, not sleeping: only CPU time counts
        sum(range(10_000))
    used, asked = cpu_seconds(os.getpid()) - before, time.process_time() - clock
    assert abs(used - asked) < 0.05  # /proc counts in clock ticks (10 ms)
    idle = cpu_seconds(os.getpid())
    time.sleep(0.2)
    assert cpu_seconds(os.getpid()) - idle < 0.05


async def test_counts_on_a_kept_engine_leave_it_open_for_the_next_poll(db):
    engine = make_engine(db.url, schema=db.schema)
    try:
        first = await counts(db.url, db.schema, engine)
        second = await counts(db.url, db.schema, engine)  # a disposed engine would reconnect: still counted right
        assert first == second == {"stored": 0}
        assert engine.pool.checkedin() == 1  # the one connection stayed in the pool between polls
    finally:
        await engine.dispose()
