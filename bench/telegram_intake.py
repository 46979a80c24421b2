"""Telegram long-polling intake: a burst of updates from many chats through the real channel (aiohttp long polling
against the tests' loopback Bot API server) into the App, NLU on, against a baseline measured in the same run:
the same updates handed to the same App one at a time, each waited for before the next (how polling delivered a
page before it went in at once).

    python bench/telegram_intake.py                      # 2,000 updates from 400 chats, SQLite
    python bench/telegram_intake.py --db postgresql -n 5000 --chats 1000

Timed: from the first update queued (or handed over) until every message is stored; the bot's replies go out
through the same loopback server in both runs. Target: ≥ 3 × the one-at-a-time baseline's msgs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.ingest import bench_settings, drop_database, fresh_database, prepare_model
from bench.pg import databases
from bot.app import App
from channels.telegram import RateLimiter, TelegramChannel
from channels.telegram.embed import feed_update
from crm_store.models import Contact
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=10_000, overall=10_000, chat_burst=10_000, overall_burst=10_000)
TEXTS = (
    "Where is my order {n}?",
    "What are your opening hours?",
    "my parcel {n} arrived damaged",
    "hi",
    "I want to talk to a person about invoice {n}",
)


def updates_for(api: BotApiServer, n: int, chats: int, seed: int = 7) -> list[dict]:
    """`n` text messages from `chats` people, in a random interleaving (queued on `api` for getUpdates)."""
    rng = random.Random(seed)
    users = [api.user(10_000 + i, f"Customer {i}") for i in range(chats)]
    return [api.user_message(rng.choice(users), rng.choice(TEXTS).format(n=i)) for i in range(n)]


async def stored(app: App) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")) or 0)


async def until_stored(app: App, n: int, within: float = 600.0) -> None:
    deadline = time.perf_counter() + within
    while await stored(app) < n:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {await stored(app)} of {n} stored within {within:.0f} s")
        await asyncio.sleep(0.02)


async def one_run(kind: str, args: argparse.Namespace, *, polling: bool) -> float:
    url, schema, drop = await fresh_database(kind)
    try:
        async with BotApiServer() as api:
            mode = "polling" if polling else "embedded"
            channel = TelegramChannel(api.token, api_server=api.base_url, mode=mode, polling_timeout=1, limiter=FAST)
            app = App(bench_settings(url, schema, args.model_dir), channels=[channel])
            await app.start()
            try:
                if polling:
                    started = time.perf_counter()
                    updates_for(api, args.n, args.chats)
                else:
                    page = updates_for(api, args.n, args.chats)
                    api._pending.clear()  # nobody polls: the updates are handed over below
                    started = time.perf_counter()
                    for update in page:
                        await feed_update(update, app.deliver, attempts=None)
                await until_stored(app, args.n)
                return args.n / (time.perf_counter() - started)
            finally:
                await app.stop()
    finally:
        await drop_database(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2_000)
    p.add_argument("--chats", type=int, default=400)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    p.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "tierdesk-bench-nlu")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    await prepare_model(args.model_dir)  # trained (or loaded) before any clock starts
    results = {}
    for kind in await databases(args.db):
        baseline = await one_run(kind, args, polling=False)
        pages = await one_run(kind, args, polling=True)
        results[kind] = {"pages_msgs_per_s": pages, "one_at_a_time_msgs_per_s": baseline, "ratio": pages / baseline}
    if args.json:
        print(json.dumps(results))
        return
    for kind, r in results.items():
        print(
            f"{kind:>11}: long polling {r['pages_msgs_per_s']:.0f} stored msgs/s, one update at a time "
            f"{r['one_at_a_time_msgs_per_s']:.0f} msgs/s → ratio {r['ratio']:.2f} ({args.n} updates, "
            f"{args.chats} chats)"
        )


if __name__ == "__main__":
    asyncio.run(main())
