"""Ingestion benchmark: messages through the whole service against plain batched INSERTs of the same contact
rows, measured in the same run.

    python bench/ingest.py                                   # direct mode, SQLite and (if reachable) PostgreSQL
    python bench/ingest.py --db sqlite -n 5000 --json
    python bench/ingest.py --mode stream --workers 1         # Redis Streams + `tierdesk worker` on PostgreSQL
    TIERDESK_BENCH_POSTGRES_URL=postgresql+asyncpg://... TIERDESK_BENCH_REDIS_URL=redis://... python bench/ingest.py

What is timed is what a customer waits for: from the first message offered until every message is stored and
every reply it caused (bot answers, ticket acknowledgements, agents' notices) is sent by the outbox worker and
recorded as sent. The NLU is on (the default model from the configured training data, trained or loaded before
the clock starts), agents are registered (routing assigns, agents are notified), and replies go out through
in-memory channels (the outbox worker sends and records them as for any channel; nothing leaves the machine).

stored msgs/s counts distinct messages only: the workload redelivers a share of its messages (`--repeats`), as
channels do after a timeout, and those cost work but are not throughput. replies/s counts outbox rows recorded
as sent inside the window. The baseline is plain batched INSERTs of the same distinct contact rows (no dedup, no
tickets, no NLU), timed right before and right after each round on the same database; ratio = stored msgs/s ÷
the mean of the two. A second baseline (`ingest_rows`) inserts copies of every row the round wrote (contacts
both ways, outbox rows, tickets and their events) the same plain way: ratio_same_rows compares the service with
the cost of writing what it must write. The NLU alone (`ingest_nlu`: the same messages classified as the
dispatcher does, nothing else) is printed beside the plain-insert baseline: no service that classifies every
message stores faster than that. Shared machines change speed from one minute to the next: the median
round is reported, with every round's ratios.

Direct mode (`tierdesk run` with `dispatch.ingest = "direct"`): all messages offered at once, `--in-flight` of
them outstanding, into one in-process App. Stream mode: `--workers` real `tierdesk worker` processes consume
the Redis inbound stream on PostgreSQL; the bench appends the messages to the stream as channels would.

Targets: stream mode ≥ 1,000 stored msgs/s with one worker on a 2-core machine; direct mode ≥ 0.5 × the
plain-insert baseline, which no run that classifies every message can reach where the NLU alone is below it
(the NLU line says how far it is).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.ingest_nlu import nlu_alone
from bench.ingest_rows import same_rows
from bench.pg import databases, pg_url
from bot.app import App, freeze_startup_heap
from bot.core.messages import InboundMessage
from bot.settings import NluSettings, Settings
from channels.memory import MemoryChannel
from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact, OutboxItem
from crm_store.repositories import agents as agents_repo
from nlu.rasa_format import load_nlu

CHANNELS = ("telegram", "email", "webchat")
BASELINE_MARK = "b"
"""External ids of the baseline's rows start with it; the workload's never do (they start with "m")."""


def faq_questions(settings: Settings) -> list[str]:
    """Questions the bot can answer: the training examples of intents that are not handed to a person."""
    data = load_nlu(settings.config_path(settings.nlu.data))
    skip = {*settings.nlu.handoff_intents, "out_of_scope"}
    return [t for t, label in zip(data.texts, data.labels, strict=True) if label not in skip]


def make_messages(
    n: int,
    customers: int,
    repeat_share: float,
    questions: list[str],
    *,
    faq_share: float = 0.5,
    channels: tuple[str, ...] = CHANNELS,
    seed: int = 7,
) -> list[InboundMessage]:
    """`n` messages from `customers` senders: `faq_share` of the distinct ones are questions the bot knows, the
    rest need a person; the last `repeat_share` of them are redeliveries of messages already offered."""
    rng = random.Random(seed)
    unique = int(n * (1 - repeat_share))
    msgs = []
    for i in range(unique):
        c = rng.randrange(customers)
        if questions and rng.random() < faq_share:
            text = rng.choice(questions)
        else:
            text = f"my parcel {rng.randrange(10**6)} arrived damaged, message {i}"
        msgs.append(
            InboundMessage.build(channel=channels[c % len(channels)], external_id=f"m{i}", sender=f"cust{c}", text=text)
        )
    while len(msgs) < n:
        msgs.append(msgs[rng.randrange(unique)])
    return msgs


def distinct(msgs: list[InboundMessage]) -> int:
    return len({(m.channel, m.external_id) for m in msgs})


def bench_settings(url: str, schema: str | None, model_dir: Path, **extra) -> Settings:
    """The defaults a deployment runs with (NLU on, acknowledgements on), on the bench's database."""
    nlu = NluSettings(model_path=str(model_dir / "nlu-model.joblib"))
    return Settings(database_url=url, database_schema=schema, nlu=nlu, **extra)


async def fresh_database(kind: str) -> tuple[str, str | None, Callable[[], Awaitable[None] | None]]:
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


async def drop_database(drop: Callable[[], Awaitable[None] | None]) -> None:
    result = drop()
    if asyncio.iscoroutine(result):
        await result


async def register_agents(url: str, schema: str | None, count: int, channels: tuple[str, ...]) -> None:
    """`count` agents serving every tier, each reachable on the first channel, as `tierdesk agents add` does."""
    engine = make_engine(url, schema=schema)
    async with make_sessionmaker(engine)() as session, session.begin():
        for i in range(count):
            await agents_repo.add_agent(
                session, name=f"Agent {i}", addresses={channels[0]: f"agent{i}"}, languages=["en", "ru", "zh"]
            )
    await engine.dispose()


async def counts(url: str, schema: str | None, engine: AsyncEngine | None = None) -> dict[str, int]:
    """What the database holds: inbound contacts of the workload (baseline rows apart) and outbox rows by status.
    A poller passes its own `engine`: a new engine and connection five times a second costs CPU the workers need."""
    own = engine is None
    engine = engine or make_engine(url, schema=schema)
    try:
        async with make_sessionmaker(engine)() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(Contact)
                .where(Contact.direction == "in", ~Contact.external_id.startswith(BASELINE_MARK))
            )
            by_status = dict(
                (await session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))).all()
            )
    finally:
        if own:
            await engine.dispose()
    return {"stored": stored or 0, **{f"outbox_{k}": v for k, v in by_status.items()}}


async def baseline(url: str, schema: str | None, msgs: list[InboundMessage], prefix: str, batch: int = 500) -> float:
    """Plain batched INSERTs of the same distinct contact rows (no dedup, no tickets): the floor cost of writing
    them. Returns rows/s."""
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


async def direct_burst(settings: Settings, msgs: list[InboundMessage], in_flight: int) -> dict:
    """All messages offered at once to one App, until every reply is sent and recorded."""
    channels = [MemoryChannel(c) for c in CHANNELS]
    app = App(settings, channels=channels)
    await app.start()
    freeze_startup_heap()  # as `tierdesk run` does once started
    todo = iter(msgs)

    async def sender() -> None:
        for m in todo:  # a fixed pool keeps `in_flight` messages outstanding, as that many connections would
            await app.deliver(m)

    try:
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sender() for _ in range(min(in_flight, len(msgs)))))
        stored_at = time.perf_counter() - t0
        await drain_outbox(app)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        batches = app.dispatcher.batches
    finally:
        await app.stop()
        gc.unfreeze()  # the next round's App is collected as this one's was
    return {
        "seconds": elapsed,
        "stored_seconds": stored_at,
        "cpu_us_per_msg": cpu / distinct(msgs) * 1e6,
        "batches": batches,
        "memory_sent": sum(len(c.sent) for c in channels),
    }


async def drain_outbox(app: App, within: float = 300.0) -> None:
    """Until the outbox holds nothing pending that is due within the window (a retry backed off would be a
    failure of the run, and is reported through the counts)."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        await app.outbox.drain()
        async with app.sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")
            )
        if not pending:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"outbox not drained within {within:.0f} s")


def figures(
    run: dict, tally: dict[str, int], msgs: list[InboundMessage], before: float, after: float, same: float
) -> dict:
    base = (before + after) / 2
    stored_per_s = tally["stored"] / run["seconds"]
    return {
        **run,
        "same_rows_msgs_per_s": same,
        "ratio_same_rows": stored_per_s / same,
        "stored_msgs_per_s": stored_per_s,
        "replies_per_s": tally.get("outbox_sent", 0) / run["seconds"],
        "baseline_rows_per_s": base,
        "ratio": stored_per_s / base,
        "offered": len(msgs),
        "distinct": distinct(msgs),
        **tally,
    }


async def direct_round(kind: str, msgs: list[InboundMessage], args: argparse.Namespace, n: int) -> dict:
    """One round on a fresh database: baseline, burst, baseline again."""
    url, schema, drop = await fresh_database(kind)
    try:
        await register_agents(url, schema, args.agents, CHANNELS)
        before = await baseline(url, schema, msgs, prefix=f"{BASELINE_MARK}{n}a-")
        run = await direct_burst(bench_settings(url, schema, args.model_dir), msgs, args.in_flight)
        tally = await counts(url, schema)
        same = await same_rows(url, schema, distinct(msgs), f"{BASELINE_MARK}{n}c-", skip=BASELINE_MARK)
        after = await baseline(url, schema, msgs, prefix=f"{BASELINE_MARK}{n}b-")
    finally:
        await drop_database(drop)
    return figures(run, tally, msgs, before, after, same)


def median_round(rounds: list[dict]) -> dict:
    median = dict(sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2])
    median["round_ratios"] = [round(r["ratio"], 3) for r in rounds]
    median["round_stored_per_s"] = [round(r["stored_msgs_per_s"]) for r in rounds]
    median["round_ratios_same_rows"] = [round(r["ratio_same_rows"], 3) for r in rounds]
    return median


async def prepare_model(model_dir: Path, encoder: str | None = None) -> None:
    """Train (or load) the default NLU model once, before any clock starts: a running service has it."""
    from bot.app import load_default_responder

    settings = bench_settings("sqlite+aiosqlite://", None, model_dir)
    settings.nlu.encoder = encoder
    await asyncio.to_thread(load_default_responder, settings)


def print_result(label: str, r: dict) -> None:
    print(
        f"{label:>18}: {r['stored_msgs_per_s']:>7.0f} stored msgs/s, {r['replies_per_s']:>7.0f} replies/s "
        f"({r['stored']} of {r['distinct']} distinct stored, {r['offered'] - r['distinct']} redeliveries, "
        f"{r.get('outbox_sent', 0)} replies sent, {r.get('outbox_pending', 0)} pending, "
        f"{r.get('outbox_failed', 0)} failed; {r['seconds']:.1f} s)"
    )
    print(
        f"{'':>18}  baseline plain inserts {r['baseline_rows_per_s']:.0f} rows/s → ratio {r['ratio']:.3f} "
        f"(median of rounds {', '.join(f'{x:.3f}' for x in r['round_ratios'])}; stored msgs/s per round "
        f"{', '.join(str(x) for x in r['round_stored_per_s'])})"
    )
    print(
        f"{'':>18}  baseline inserting copies of every row the round wrote {r['same_rows_msgs_per_s']:.0f} msgs/s "
        f"→ ratio {r['ratio_same_rows']:.3f} (rounds {', '.join(f'{x:.3f}' for x in r['round_ratios_same_rows'])})"
    )
    if "nlu_alone_msgs_per_s" in r:
        print(
            f"{'':>18}  the NLU alone classifies {r['nlu_alone_msgs_per_s']:.0f} msgs/s "
            f"= {r['nlu_alone_msgs_per_s'] / r['baseline_rows_per_s']:.2f} × the plain-insert baseline"
        )
    if "worker_rss_mb" in r:
        print(
            f"{'':>18}  worker RSS after start {r['worker_rss_start_mb']} MB, after the burst "
            f"{r['worker_rss_mb']} MB, peak {r['worker_hwm_mb']} MB; worker CPU {r['worker_cpu_ms_per_msg']:.2f} ms "
            f"per stored message, {r['worker_cpu_cores']:.2f} cores busy in the window"
        )
    if servers := r.get("server_cpu_ms_per_msg"):
        each = ", ".join(f"{name} CPU {v:.2f} ms" for name, v in servers.items())
        print(f"{'':>18}  {each} per stored message")
    if "stored_seconds" in r:
        print(
            f"{'':>18}  every message stored after {r['stored_seconds']:.1f} s, "
            f"every reply sent after {r['seconds']:.1f} s"
        )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["direct", "stream"], default="direct")
    p.add_argument("-n", type=int, default=20_000, help="messages offered per round (redeliveries included)")
    p.add_argument("--customers", type=int, default=2_000)
    p.add_argument("--repeats", type=float, default=0.05, help="share of redelivered messages")
    p.add_argument("--faq-share", type=float, default=0.5, help="share of questions the bot can answer")
    p.add_argument("--agents", type=int, default=20, help="agents registered (every tier, capacity 5)")
    p.add_argument("--in-flight", type=int, default=1000, help="direct mode: concurrent deliveries")
    p.add_argument("--workers", type=int, default=1, help="stream mode: `tierdesk worker` processes")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each between two baseline runs")
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both", help="direct mode")
    p.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "tierdesk-bench-nlu")
    p.add_argument("--json", action="store_true")
    return p.parse_args()


async def main() -> None:
    args = parse_args()
    await prepare_model(args.model_dir)
    questions = faq_questions(bench_settings("sqlite+aiosqlite://", None, args.model_dir))
    results = {}
    if args.mode == "stream":
        from bench.ingest_stream import stream_round

        msgs = make_messages(
            args.n, args.customers, args.repeats, questions, faq_share=args.faq_share, channels=("memory",)
        )
        rounds = [await stream_round(msgs, args, n) for n in range(args.rounds)]
        results[f"stream x{args.workers}"] = median_round(rounds)
    else:
        msgs = make_messages(args.n, args.customers, args.repeats, questions, faq_share=args.faq_share)
        for kind in await databases(args.db):
            results[kind] = median_round([await direct_round(kind, msgs, args, n) for n in range(args.rounds)])
    nlu = nlu_alone(bench_settings("sqlite+aiosqlite://", None, args.model_dir), msgs)
    for r in results.values():
        r["nlu_alone_msgs_per_s"] = nlu
    if args.json:
        print(json.dumps(results))
        return
    for label, r in results.items():
        print_result(label, r)


if __name__ == "__main__":
    asyncio.run(main())
