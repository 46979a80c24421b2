"""Stream mode of the ingestion benchmark: real `tierdesk worker` processes consume the Redis inbound stream on
PostgreSQL while the bench appends messages to it, as channels do in `dispatch.ingest = "stream"`.

Each worker runs with the memory channel as its only channel (it sends every reply and the outbox records it as
sent, nothing leaves the machine). The clock starts before the first message is appended and stops once the
stream is empty (a worker deletes an entry only after its contact, replies included, is committed) and no reply is
pending; the count afterwards says whether every distinct message is in the log. The time at which the stream
emptied is printed too: what is left after it is the outbox sending and recording the last replies. The workers'
resident memory is read from /proc after they started (NLU loaded) and after the burst, and their CPU time over
the window.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import select

from bench.ingest import (
    BASELINE_MARK,
    baseline,
    counts,
    distinct,
    drop_database,
    figures,
    fresh_database,
    register_agents,
)
from bench.ingest_rows import same_rows
from bot.core.ingest import StreamIngest, encode
from bot.core.messages import InboundMessage
from crm_store.engine import make_engine
from crm_store.models import OutboxItem

REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
SERVERS = ("postgres", "redis-server")
"""Local server processes whose CPU time in the window is reported beside the workers'."""
CHANNEL = "memory"


def redis_url() -> str:
    return os.environ.get("TIERDESK_BENCH_REDIS_URL") or os.environ.get("TIERDESK_TEST_REDIS_URL") or REDIS_DEFAULT


def rss_mb(pid: int) -> tuple[int, int]:
    """(resident, peak resident) memory of a process in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def worker_env(url: str, schema: str, prefix: str, model_dir: Path, state_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "TIERDESK_DATABASE_URL": url,
        "TIERDESK_DATABASE_SCHEMA": schema,
        "TIERDESK_REDIS_URL": redis_url(),
        "TIERDESK_REDIS_PREFIX": prefix,
        "TIERDESK_DISPATCH__INGEST": "stream",
        "TIERDESK_CHANNELS": f'["{CHANNEL}"]',
        "TIERDESK_NLU__MODEL_PATH": str(model_dir / "nlu-model.joblib"),
        "TIERDESK_STATE_DIR": state_dir,
        "TIERDESK_WEB__ENABLED": "false",
        "TIERDESK_LOG_LEVEL": "INFO",
    }


class Worker:
    """One `tierdesk worker` process; its log is read as it comes (kept for when something goes wrong)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.running = asyncio.Event()
        self.log: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log = [*self.log[-30:], line]
            if "tierdesk running" in line:  # logged once the App started, its stream consumer included
                self.running.set()


async def start_workers(count: int, env: dict[str, str]) -> list[Worker]:
    exe = Path(sys.executable).with_name("tierdesk")
    command = [str(exe), "worker"] if exe.exists() else [sys.executable, "-m", "bot.cli.main", "worker"]
    return [
        Worker(
            await asyncio.create_subprocess_exec(
                *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
        )
        for _ in range(count)
    ]


async def wait_running(workers: list[Worker], within: float = 180.0) -> None:
    """Until every worker has started (NLU loaded, consuming the stream)."""
    deadline = time.perf_counter() + within
    while not all(w.running.is_set() for w in workers):
        for w in workers:
            if w.proc.returncode is not None:
                raise RuntimeError(f"a worker exited with {w.proc.returncode}:\n" + "\n".join(w.log))
        if time.perf_counter() > deadline:
            raise RuntimeError(f"workers not running within {within:.0f} s")
        await asyncio.sleep(0.2)


async def publish(redis, ingest: StreamIngest, msgs: list[InboundMessage], chunk: int = 500) -> None:
    for i in range(0, len(msgs), chunk):
        pipe = redis.pipeline(transaction=False)
        for m in msgs[i : i + chunk]:
            pipe.xadd(ingest.stream, encode(m))
        await pipe.execute()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, from /proc: on a shared machine the workers' CPU per
    message says more than their throughput, which moves with whatever else runs."""
    return _stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def _stat_cpu(stat: str) -> float:
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(command: str) -> dict[int, float]:
    """CPU seconds so far of every process of this machine named `command` (postgres, redis-server) that /proc
    lets us read: where the rest of the machine's time per message goes. Empty when the server runs elsewhere."""
    found = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = path.read_text()
        except OSError:  # ended meanwhile
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")] == command:
            found[int(path.parent.name)] = _stat_cpu(stat)
    return found


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings of `cpu_of`; a process started in between counts whole."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def wait_done(
    url: str,
    schema: str,
    redis,
    ingest: StreamIngest,
    workers: list[Worker],
    within: float = 600.0,
    every: float = 0.05,
) -> float:
    """Until the stream is empty (a worker deletes an entry once its contact is committed) and no reply is pending,
    asked `every` seconds: XLEN and one indexed row lookup, next to nothing for the machine the workers share
    (counting the log itself, 20 times a second, cost PostgreSQL a tenth of a core by the end of a long run). The
    caller counts what is stored once afterwards. Returns when (perf_counter) the stream was first found empty:
    every message stored, replies perhaps not yet sent."""
    engine = make_engine(url, schema=schema)
    pending = select(OutboxItem.id).where(OutboxItem.status == "pending").limit(1)
    try:
        deadline = time.perf_counter() + within
        stored_at = None
        while time.perf_counter() < deadline:
            for w in workers:
                if w.proc.returncode is not None:
                    raise RuntimeError("a worker exited during the burst:\n" + "\n".join(w.log))
            if stored_at is not None or not await redis.xlen(ingest.stream):
                stored_at = stored_at or time.perf_counter()
                async with engine.connect() as conn:
                    if (await conn.execute(pending)).first() is None:
                        return stored_at
            await asyncio.sleep(every)
        raise RuntimeError(f"not done within {within:.0f} s: {await counts(url, schema, engine)}")
    finally:
        await engine.dispose()


async def stop_workers(workers: list[Worker]) -> None:
    for w in workers:
        if w.proc.returncode is None:
            w.proc.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            await asyncio.wait_for(w.proc.wait(), 30)
        except TimeoutError:
            w.proc.kill()
            await w.proc.wait()
        await w.reader


async def forget_keys(redis, prefix: str) -> None:
    """The bench's own keys only (its prefix is fresh for the round)."""
    async for key in redis.scan_iter(match=f"{prefix}:*", count=500):
        await redis.delete(key)


async def stream_round(msgs: list[InboundMessage], args, n: int) -> dict:
    url, schema, drop = await fresh_database("postgresql")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis = aioredis.Redis.from_url(redis_url())
    ingest = StreamIngest(redis, prefix)
    workers: list[Worker] = []
    try:
        await register_agents(url, schema, args.agents, (CHANNEL,))
        before = await baseline(url, schema, msgs, prefix=f"{BASELINE_MARK}{n}a-")
        with tempfile.TemporaryDirectory() as state_dir:
            workers = await start_workers(args.workers, worker_env(url, schema, prefix, args.model_dir, state_dir))
            await wait_running(workers)
            started = [rss_mb(w.proc.pid) for w in workers]
            cpu0 = sum(cpu_seconds(w.proc.pid) for w in workers)
            servers0 = {name: cpu_of(name) for name in SERVERS}
            t0 = time.perf_counter()
            await publish(redis, ingest, msgs)
            published = time.perf_counter() - t0
            stored_at = await wait_done(url, schema, redis, ingest, workers) - t0
            elapsed = time.perf_counter() - t0
            cpu = sum(cpu_seconds(w.proc.pid) for w in workers) - cpu0
            servers = {name: cpu_since(servers0[name], cpu_of(name)) for name in SERVERS}
            burst = [rss_mb(w.proc.pid) for w in workers]
            await stop_workers(workers)
        tally = await counts(url, schema)
        same = await same_rows(url, schema, distinct(msgs), f"{BASELINE_MARK}{n}c-", skip=BASELINE_MARK)
        after = await baseline(url, schema, msgs, prefix=f"{BASELINE_MARK}{n}b-")
    finally:
        await stop_workers(workers)
        await forget_keys(redis, prefix)
        await redis.aclose()
        await drop_database(drop)
    run = {
        "seconds": elapsed,
        "published_seconds": published,
        "stored_seconds": stored_at,
        "workers": len(workers),
        "worker_rss_start_mb": max(r for r, _ in started),
        "worker_rss_mb": max(r for r, _ in burst),
        "worker_hwm_mb": max(h for _, h in burst),
        "worker_cpu_ms_per_msg": cpu / distinct(msgs) * 1000,
        "worker_cpu_cores": cpu / elapsed,
        "server_cpu_ms_per_msg": {name: used / distinct(msgs) * 1000 for name, used in servers.items() if used},
    }
    return figures(run, tally, msgs, before, after, same)
