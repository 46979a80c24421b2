"""The contact log through HTTP, one filter at a time: which of the log bench's filters (LOG_FILTERS) is slow, and
whether the first page or the next one is. The mixed figure of bench/dashboard.py ("contact log (12 filters, half
also the next page)") says how slow the page is; this says where.

    TIERDESK_BENCH_POSTGRES_URL=postgresql+asyncpg://... python bench/log_filters.py --schema s10m --repeat 10
    python bench/log_filters.py --schema s10m --statements   # also each request's statements and their times

Each filter is requested `--repeat` times after one untimed request (its statements prepared, its pages read
once); its next page (the "Older" link) right after each first page. It runs against a schema seeded by
bench/dashboard.py and reads only (the supervisor's password is set, as there).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.dashboard_http import EMAIL, LOG_FILTERS, PASSWORD, _get, _login, _next_page
from bench.pg import pg_url
from bot.app import App
from bot.settings import NluSettings, Settings
from bot.web import create_web_app
from bot.web.auth import hash_password
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo


def _pick(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(ms: list[float]) -> str:
    return f"p50 {_pick(ms, 0.5):7.1f} max {max(ms):7.1f}" if ms else "      (no such page)"


async def run(args: argparse.Namespace) -> None:
    settings = Settings(database_url=pg_url(), database_schema=args.schema, state_dir=tempfile.mkdtemp(),
                        nlu=NluSettings(enabled=False))
    app = App(settings, channels=[])
    await app.start()
    sent: list[tuple[float, str]] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["log_filters_t"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(((time.perf_counter() - conn.info["log_filters_t"]) * 1000, " ".join(statement.split())[:70]))

    try:
        async with app.sessions() as s, s.begin():
            sup = await web_repo.agent_by_email(s, EMAIL) or await agents_repo.add_agent(
                s, name="Bench Supervisor", role="supervisor", email=EMAIL
            )
            await web_repo.set_password_hash(s, sup.id, hash_password(PASSWORD))
        if args.statements:
            event.listen(Engine, "before_cursor_execute", before)
            event.listen(Engine, "after_cursor_execute", after)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(app)),
                                     base_url="http://bench") as client:
            await _login(client)
            every: list[float] = []
            for params in LOG_FILTERS:
                firsts, nexts = [], []
                for turn in range(args.repeat + 1):
                    sent.clear()
                    t = time.perf_counter()
                    page = await _get(client, "/contacts?" + urlencode(params))
                    first = (time.perf_counter() - t) * 1000
                    older = _next_page(page.text)
                    if older:
                        t = time.perf_counter()
                        await _get(client, older)
                        if turn:
                            nexts.append((time.perf_counter() - t) * 1000)
                    if turn:
                        firsts.append(first)
                every += firsts + nexts
                shown = "&".join(f"{k}={v}" for k, v in params.items()) or "(no filter)"
                print(f"{shown:55s} first {_line(firsts)} | next {_line(nexts)} ms")
                if args.statements:  # the last request's (first page, then next page)
                    for ms, statement in sent:
                        print(f"      {ms:7.2f} ms  {statement}")
            print(f"all filters, {len(every)} requests: p50 {_pick(every, 0.5):.1f} p99 {_pick(every, 0.99):.1f} "
                  f"max {max(every):.1f} ms")
    finally:
        if args.statements:
            event.remove(Engine, "before_cursor_execute", before)
            event.remove(Engine, "after_cursor_execute", after)
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True, help="a PostgreSQL schema seeded by bench/dashboard.py --schema")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--statements", action="store_true", help="print each filter's last statements and times")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
