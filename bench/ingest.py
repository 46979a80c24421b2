"""Ingestion benchmark: N messages through the real dispatcher (group commit, exactly-once contact log, tickets,
routing, outbox) against plain batched INSERTs of the same contact rows, measured in the same run.

    python bench/ingest.py                       # SQLite and, if reachable, PostgreSQL
    python bench/ingest.py --db sqlite -n 5000 --json
    TIERDESK_BENCH_POSTGRES_URL=postgresql+asyncpg://... python bench/ingest.py

Figures: msgs/s under a burst (all offered at once, bounded in flight), p50/p99 latency from receive to committed
at a paced 500 msgs/s (same messages-per-customer shape as the burst), baseline rows/s, and
ratio = msgs/s ÷ baseline rows/s. Every message goes the whole way: customer, contact, ticket, routing, the
acknowledgement in the outbox, and its delivery and outbound contact by the outbox worker running alongside.

Shared machines change speed from one minute to the next, so the ratio is measured in rounds: each round times
the baseline right before and right after its burst, and the round's ratio is the burst over the mean of the
two; the median round is reported (with every round's ratio). The latency run starts after a warm-up of
`--warmup` messages from other customers, untimed (statement caches and connections, as in a running service),
and with the heap built so far frozen out of the garbage collector, as `tierdesk run` does once started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from bench.pg import databases, pg_url
from bot.app import App, freeze_startup_heap
from bot.core.messages import InboundMessage
from bot.settings import NluSettings, Settings
from channels.memory import MemoryChannel
from crm_store.engine import make_engine, upgrade
from crm_store.models import Contact

CHANNELS = ("telegram", "email", "webchat")


def make_messages(
    n: int, customers: int, repeat_share: float, seed: int = 7, *, steady: bool = False
) -> list[InboundMessage]:
    """`n` messages from `customers` senders, the last `repeat_share` of them redeliveries. Senders are drawn from
    all customers at once, or, `steady`, from those arrived so far, customers arriving at an even pace (the same
    share of new conversations all along, as in a running service)."""
    rng = random.Random(seed)
    unique = int(n * (1 - repeat_share))
    msgs = []
    for i in range(unique):
        c = rng.randrange(i * customers // unique + 1 if steady else customers)
        channel = CHANNELS[c % len(CHANNELS)]
        msgs.append(
            InboundMessage.build(
                channel=channel,
                external_id=f"m{i}",
                sender=f"cust{c}",
                text=f"message {i} about order {rng.randrange(10**6)}",
            )
        )
    while len(msgs) < n:  # redeliveries of messages already sent
        msgs.append(msgs[rng.randrange(unique)])
    return msgs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def fresh_database(kind: str) -> tuple[str, str | None, callable]:
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp())
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        await upgrade(url)
        return url, None, lambda: shutil.rmtree(folder, ignore_errors=True)
    url = pg_url()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    await upgrade(url, schema=schema)

    async def drop() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await engine.dispose()

    return url, schema, drop


async def dispatcher_burst(url: str, schema: str | None, msgs: list[InboundMessage], in_flight: int) -> dict:
    settings = Settings(database_url=url, database_schema=schema, nlu=NluSettings(enabled=False))
    app = App(settings, channels=[MemoryChannel(c) for c in CHANNELS])
    await app.start()
    latencies: list[float] = []
    todo = iter(msgs)

    async def sender() -> None:
        # a fixed pool of senders keeps `in_flight` messages outstanding, as that many connections would
        for m in todo:
            t0 = time.perf_counter()
            await app.deliver(m)
            latencies.append(time.perf_counter() - t0)

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(min(in_flight, len(msgs)))))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    batches = app.dispatcher.batches
    await app.stop()
    return {
        "msgs_per_s": len(msgs) / elapsed,
        "burst_p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_us_per_msg": cpu / len(msgs) * 1e6,
        "batches": batches,
        "seconds": elapsed,
    }


async def dispatcher_paced(
    url: str, schema: str | None, msgs: list[InboundMessage], rate: float, warmup: list[InboundMessage] = ()
) -> dict:
    """Offer messages at a steady rate and time each from receive to committed (after an untimed warm-up)."""
    settings = Settings(database_url=url, database_schema=schema, nlu=NluSettings(enabled=False))
    app = App(settings, channels=[MemoryChannel(c) for c in CHANNELS])
    await app.start()
    for i in range(0, len(warmup), 20):
        await asyncio.gather(*(app.deliver(m) for m in warmup[i : i + 20]))
    await app.outbox.drain()
    freeze_startup_heap()  # as `tierdesk run` does once started; also keeps this harness's message lists out of it
    latencies: list[float] = []

    async def one(m: InboundMessage) -> None:
        t0 = time.perf_counter()
        await app.deliver(m)
        latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    tasks = []
    for i, m in enumerate(msgs):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(m)))
    await asyncio.gather(*tasks)
    await app.stop()
    return {
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "offered_per_s": rate,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


async def baseline(
    url: str, schema: str | None, msgs: list[InboundMessage], batch: int = 500, prefix: str = "b-"
) -> float:
    """Plain batched INSERTs of the same contact rows (no dedup, no tickets): the floor cost of writing them."""
    engine = make_engine(url, schema=schema)
    seen, rows = set(), []
    for m in msgs:
        if (m.channel, m.external_id) in seen:
            continue
        seen.add((m.channel, m.external_id))
        rows.append(
            {
                "channel": m.channel,
                "external_id": prefix + m.external_id,
                "direction": "in",
                "author": "customer",
                "address": m.sender,
                "text": m.text,
                "attachments": [],
                "created_at": m.received_at,
                "logged_at": m.received_at,
                "truncated": False,
            }
        )
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        async with engine.begin() as conn:
            await conn.execute(insert(Contact.__table__), rows[i : i + batch])
    elapsed = time.perf_counter() - t0
    await engine.dispose()
    return len(rows) / elapsed


async def _drop(drop) -> None:
    result = drop()
    if asyncio.iscoroutine(result):
        await result


async def burst_round(kind: str, msgs: list[InboundMessage], in_flight: int, n: int) -> dict:
    """One round: baseline, burst, baseline again, on a fresh database."""
    url, schema, drop = await fresh_database(kind)
    try:
        before = await baseline(url, schema, msgs, prefix=f"b{n}a-")
        burst = await dispatcher_burst(url, schema, msgs, in_flight)
        after = await baseline(url, schema, msgs, prefix=f"b{n}b-")
    finally:
        await _drop(drop)
    base = (before + after) / 2
    return {**burst, "baseline_rows_per_s": base, "ratio": burst["msgs_per_s"] / base}


async def bench_one(kind: str, args: argparse.Namespace) -> dict:
    msgs = make_messages(args.n, args.customers, args.repeats)
    rounds = [await burst_round(kind, msgs, args.in_flight, n) for n in range(args.rounds)]
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    url, schema, drop = await fresh_database(kind)
    try:
        # the same workload shape as the burst (messages per customer), over a shorter stretch
        per_customer = max(args.n / args.customers, 1.0)
        paced_msgs = make_messages(args.paced_n, max(int(args.paced_n / per_customer), 1), args.repeats, seed=11,
                                   steady=args.arrivals == "steady")
        warmup = [
            InboundMessage.build(channel=m.channel, external_id=f"w{m.external_id}", sender=f"w{m.sender}", text=m.text)
            for m in make_messages(args.warmup, max(args.warmup // 10, 1), 0.0, seed=5)
        ]
        paced = await dispatcher_paced(url, schema, paced_msgs, args.rate, warmup)
    finally:
        await _drop(drop)
    return {
        "msgs_per_s": round(median["msgs_per_s"], 1),
        "p50_ms": round(paced["p50_ms"], 2),
        "p99_ms": round(paced["p99_ms"], 2),
        "baseline_rows_per_s": round(median["baseline_rows_per_s"], 1),
        "ratio": round(median["ratio"], 3),
        "round_ratios": [round(r["ratio"], 3) for r in rounds],
        "burst_p99_ms": round(median["burst_p99_ms"], 1),
        "cpu_us_per_msg": round(median["cpu_us_per_msg"], 1),
        "batches": median["batches"],
        "messages": args.n,
        "paced_messages": args.paced_n,
        "offered_per_s": args.rate,
        "warmup_messages": args.warmup,
        "arrivals": args.arrivals,
    }


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20_000, help="messages in the burst run")
    p.add_argument("--customers", type=int, default=2_000)
    p.add_argument("--repeats", type=float, default=0.05, help="share of redelivered messages")
    p.add_argument("--in-flight", type=int, default=1000, help="concurrent deliveries in the burst")
    p.add_argument("--rate", type=float, default=500.0, help="offered msgs/s for the latency run")
    p.add_argument("--paced-n", type=int, default=10_000, help="messages in the latency run (same shape as -n)")
    p.add_argument("--rounds", type=int, default=3, help="burst rounds, each between two baseline runs")
    p.add_argument("--warmup", type=int, default=1000, help="untimed messages before the latency run")
    p.add_argument("--arrivals", choices=["steady", "front"], default="steady",
                   help="latency run: customers arrive at an even pace, or all are there from the start (most of "
                   "the first second's messages then open a conversation)")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    kinds = await databases(args.db)
    results = {kind: await bench_one(kind, args) for kind in kinds}
    if args.json:
        print(json.dumps(results))
        return
    for kind, r in results.items():
        print(
            f"{kind:>10}: {r['msgs_per_s']:>8.0f} msgs/s end to end (burst of {r['messages']}, "
            f"{r['batches']} batches, burst p99 {r['burst_p99_ms']:.0f} ms)"
        )
        print(
            f"{'':>10}  at {r['offered_per_s']:.0f} msgs/s offered: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
        )
        print(
            f"{'':>10}  baseline plain inserts {r['baseline_rows_per_s']:.0f} rows/s → ratio {r['ratio']:.3f} "
            f"(median of rounds {', '.join(f'{x:.3f}' for x in r['round_ratios'])}; "
            f"{r['cpu_us_per_msg']:.0f} µs CPU per message)"
        )


if __name__ == "__main__":
    asyncio.run(main())
