"""The dashboard's pages timed through HTTP: the real web app (bot.web.create_web_app over a started App) in
process over httpx's ASGI transport, logged in as a supervisor, so routing, auth, the queries and rendering are
all in each figure.

The App runs in the pages' own event loop, so anything it runs beside them would be in their timings. It is
started without its loops' work: no channels, no background jobs (the SLA clock, re-tiering and retention are
`tierdesk run`'s `background_jobs`, never passed here), direct ingest (no stream consumer), and the outbox
poller parked by its setting (`outbox.poll_interval_s`: it wakes only when a reply is queued, which no page here
does). The dispatcher waits on its empty queue and the outbox lease heartbeat has nothing to renew. What a page
timing holds is that page's request alone; the contacts an overview finds new are logged before it, untimed."""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.dashboard_seed import arrival
from bot.app import App, freeze_startup_heap
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from bot.web import create_web_app
from bot.web.auth import hash_password
from crm_store.models import Contact
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo

EMAIL, PASSWORD = "supervisor@bench.example", "bench supervisor password"
PARKED_S = 24 * 3600.0
"""The outbox's poll interval in the bench: longer than any run, so it polls once, at start, and never again."""
LOG_FILTERS: tuple[dict[str, str], ...] = (
    {},
    {"channel": "email"},
    {"tier": "VIP"},
    {"direction": "in", "intent": "refund"},
    {"q": "warranty"},
    {"q": "warranty", "channel": "webchat", "tier": "important"},
    {"agent": "3"},
    {"q": "xylophone"},
    {"q": "zqxjvbk"},
    {"q": "заказ"},
    {"q": "退款"},
    {"desk": "1"},
)


async def _login(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = await client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": token, "next": "/"})
    if done.status_code != 303:
        raise RuntimeError(f"bench login refused: {done.status_code}")


async def _get(client: httpx.AsyncClient, path: str) -> httpx.Response:
    r = await client.get(path)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code}")
    return r


async def _export_first_chunk(client: httpx.AsyncClient, path: str) -> None:
    async with client.stream("GET", path) as r:
        if r.status_code != 200:
            raise RuntimeError(f"GET {path}: {r.status_code}")
        async for _ in r.aiter_bytes():
            break


def _next_page(html: str) -> str | None:
    found = re.search(r'href="(/contacts\?[^"]*before=[^"]+)"', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def _timed(fn: Any, repeat: int, prepare: Any = None) -> list[float]:
    """`repeat` timings of `fn` after an untimed warm-up; `prepare` (untimed) runs before each call."""
    if prepare is not None:
        await prepare()
    await fn()  # warm-up
    out = []
    for _ in range(repeat):
        if prepare is not None:
            await prepare()
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _figures(ms: list[float], base: float) -> dict[str, float]:
    ordered = sorted(ms)
    pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50_ms": round(pick(0.5), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(ordered[-1], 2),
        "p99_vs_pk_fetch": round(pick(0.99) / base, 1),
    }


async def measure_pages(url: str, schema: str | None, args: argparse.Namespace, out: dict) -> dict[str, dict]:
    """p50/p99 of each page, and its p99 over the primary-key fetch's measured in the same run."""
    settings = Settings(
        database_url=url,
        database_schema=schema,
        state_dir=tempfile.mkdtemp(),
        nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(poll_interval_s=PARKED_S),  # no poll runs beside the pages (see the module docstring)
        dispatch=DispatchSettings(ingest="direct"),
    )
    app = App(settings, channels=[])
    await app.start()
    freeze_startup_heap()  # where `tierdesk run` freezes it: once the App has started, before the web app is built
    rnd = random.Random(5)
    fresh = iter(range(10**9))
    tag = uuid.uuid4().hex[:8]  # a reused schema keeps earlier runs' contacts
    try:
        async with app.sessions() as s, s.begin():
            sup = await web_repo.agent_by_email(s, EMAIL) or await agents_repo.add_agent(
                s, name="Bench Supervisor", role="supervisor", email=EMAIL
            )
            await web_repo.set_password_hash(s, sup.id, hash_password(PASSWORD))
        web = create_web_app(app)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bench") as client:
            await _login(client)

            async def arrive() -> None:
                async with app.sessions() as s, s.begin():  # contacts arrived since the last look (untimed)
                    stamp = datetime.now(UTC)
                    s.add_all(
                        [
                            Contact(
                                **arrival(rnd, args.customers),
                                external_id=f"h-{tag}-{next(fresh)}",
                                created_at=stamp,
                                logged_at=stamp,
                            )
                            for _ in range(args.new_contacts)
                        ]
                    )

            async def overview(days: int) -> Any:
                since = (datetime.now(UTC) - timedelta(days=days - 1)).date().isoformat()

                async def run() -> None:
                    await _get(client, f"/?from={since}")

                return run

            turn = iter(range(10**9))

            async def log_page() -> None:
                params = LOG_FILTERS[next(turn) % len(LOG_FILTERS)]
                first = await _get(client, "/contacts?" + urlencode(params))
                nxt = _next_page(first.text)
                if nxt and rnd.random() < 0.5:
                    await _get(client, nxt)

            async def page(make_path: Any) -> Any:
                async def run() -> None:
                    await _get(client, make_path())

                return run

            pages = {
                "overview (14 days)": (await overview(14), args.repeat_overview, arrive),
                "overview (30 days)": (await overview(30), args.repeat_overview, arrive),
                "contact log (12 filters, half also the next page)": (log_page, args.page_repeat),
                "customer page": (
                    await page(lambda: f"/customers/{1 + rnd.randrange(args.customers)}"),
                    args.page_repeat,
                ),
                "ticket page": (await page(lambda: f"/tickets/{1 + rnd.randrange(args.tickets)}"), args.page_repeat),
                "agents page (14 days)": (await page(lambda: "/agents"), args.page_repeat),
                "SLA queue: open tickets": (await page(lambda: "/tickets?status=open"), args.page_repeat),
                "SLA queue: pending tickets": (await page(lambda: "/tickets?status=pending"), args.page_repeat),
                "customers list": (await page(lambda: "/customers"), args.page_repeat),
            }

            async def export() -> None:  # httpx's ASGI transport reads a streamed body whole: one customer's log
                await _export_first_chunk(client, f"/contacts/export.csv?customer={1 + rnd.randrange(args.customers)}")

            pages["export (csv, one customer's contacts)"] = (export, args.page_repeat)
            if args.pages:  # only the pages named (by a part of their name)
                wanted = [w.strip() for w in args.pages.split(",") if w.strip()]
                pages = {name: p for name, p in pages.items() if any(w in name for w in wanted)}
            base = out["baseline_pk_fetch"]["p99_ms"] or 0.01
            return {name: _figures(await _timed(*timing), base) for name, timing in pages.items()}
    finally:
        await app.stop()
