"""Dashboard benchmark: seed a large CRM (bulk, in the database), then time what supervisors wait for — the
overview aggregates, a filtered contact-log page, a customer's history — against baselines measured in the
same run (a primary-key fetch and a full count(*) scan of the contact log).

    python bench/dashboard.py                                   # SQLite and, if reachable, PostgreSQL
    python bench/dashboard.py --db postgresql --contacts 1000000 --customers 100000 --tickets 200000 --json
    TIERDESK_BENCH_POSTGRES_URL=postgresql+asyncpg://... python bench/dashboard.py --db postgresql

Targets: overview < 1 s; contact-log page and history p99 < 50 ms. Before each timed overview, untimed,
`--new-contacts` contacts are logged; the timed overview is what the page runs: the contacts-per-day rollup's
refresh, then the reads over the last 30 whole UTC days (the page's ranges are whole days: `date_range`), the
backlog from the ticket writer's counters. The rollup's first build (once per deployment) is reported on its own,
and so are the figures over a range cut inside days (GET /api/v1/reports/figures with times: its part-days are
read from the tickets of those hours). One contact in DESK_EVERY is desk traffic (no customer, no ticket), which
every view but "include desk traffic" leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bench.dashboard_http import measure_pages
from bench.dashboard_seed import RARE, arrival, seed
from bench.ingest import drop_database, fresh_database
from bench.pg import databases, pg_url
from bot.app import freeze_startup_heap
from bot.web.dashboard.common import date_range
from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact
from crm_store.repositories import contact_days, reports
from crm_store.repositories import figures as ticket_figures


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(
    fn: Callable[[], Awaitable[object]], repeat: int, prepare: Callable[[], Awaitable[object]] | None = None
) -> list[float]:
    """`repeat` timings of `fn` after one untimed warm-up; `prepare` (untimed) runs before each call."""
    if prepare is not None:
        await prepare()
    await fn()  # warm the cache and the statement cache
    out = []
    for _ in range(repeat):
        if prepare is not None:
            await prepare()
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(ms, 0.5), 2), "p99_ms": round(pct(ms, 0.99), 2), "max_ms": round(max(ms), 2)}


async def measure(url: str, schema: str | None, args: argparse.Namespace) -> dict:
    engine = make_engine(url, schema=schema)
    sessions = make_sessionmaker(engine)
    rnd = random.Random(11)
    now = datetime.now(UTC)
    _first, _last, since, until = date_range((now - timedelta(days=29)).date().isoformat(), None)  # the page's 30 days
    try:
        writers = make_sessionmaker(engine, writer=True)
        fresh = iter(range(10**9))
        run = uuid.uuid4().hex[:8]  # a reused schema keeps earlier runs' contacts

        async def arrive(new_contacts: int) -> None:
            """New contacts logged since the last look (untimed: the channels' work, not the page's)."""
            async with writers() as s, s.begin():
                if new_contacts:
                    stamp = datetime.now(UTC)
                    await s.execute(
                        insert(Contact),
                        [
                            {
                                **arrival(rnd, args.customers),
                                "external_id": f"new-{run}-{next(fresh)}",
                                "created_at": stamp,
                                "logged_at": stamp,
                            }
                            for _ in range(new_contacts)
                        ],
                    )

        async def refresh() -> None:
            """As the overview page does first: the rollup catches up with the contacts logged since."""
            async with writers() as s, s.begin():
                await contact_days.refresh_contact_days(s)

        started = time.perf_counter()
        await refresh()  # the first refresh counts the whole log once (a deployment's first overview)
        rollup_build_ms = (time.perf_counter() - started) * 1000

        async def overview() -> None:
            """The overview page's calls (bot.web.dashboard.overview), in its order, without the rendering."""
            await refresh()
            async with sessions() as s:
                await reports.contacts_per_day(s, since, until, by="channel")
                await reports.contacts_per_day(s, since, until, by="tier")
                await ticket_figures.backlog_by_queue(s)
                await ticket_figures.figures(s, since, until)

        async def figures_part_days() -> None:
            """The API's figures over the last 30 days to the minute: two part-days read from their tickets."""
            async with sessions() as s:
                await ticket_figures.figures(s, now - timedelta(days=30), now)

        filters = [
            reports.ContactFilter(),
            reports.ContactFilter(channel="email"),
            reports.ContactFilter(tier="VIP"),
            reports.ContactFilter(direction="in", intent="refund"),
            reports.ContactFilter(q="warranty"),
            reports.ContactFilter(q="warranty", channel="webchat", tier="important"),
            reports.ContactFilter(agent_id=3),
            reports.ContactFilter(since=now - timedelta(days=7), channel="telegram", direction="out"),
            # text search: a common word (every contact), a rare one, one no contact has, a word with filters
            reports.ContactFilter(q="order"),
            reports.ContactFilter(q=RARE),
            reports.ContactFilter(q="zqxjvbk"),
            reports.ContactFilter(q="refund late", channel="email", direction="in"),
            reports.ContactFilter(q=RARE, channel="telegram", tier="ordinary"),
            reports.ContactFilter(q="заказ"),
            reports.ContactFilter(q="退款"),
            reports.ContactFilter(q="包裹还没到", tier="potential"),
            # desk traffic included: all of the log, and a word in it
            reports.ContactFilter(include_desk=True),
            reports.ContactFilter(q="warranty", include_desk=True),
        ]
        per_filter: dict[str, list[float]] = {}
        turns = [i for i in range(len(filters)) for _ in range(max(1, args.repeat // 4))]
        rnd.shuffle(turns)
        step = iter([-1, *turns])  # timed() first runs one call untimed: the warm-up

        async def log_page() -> None:
            i = next(step)
            f = filters[max(i, 0)]
            async with sessions() as s:
                t = time.perf_counter()
                rows = await reports.search_contacts(s, f, limit=51)
                if rows and rnd.random() < 0.5:  # the next page, by keyset
                    await reports.search_contacts(s, f, before=(rows[-1]["created_at"], rows[-1]["id"]), limit=51)
                if i >= 0:
                    per_filter.setdefault(str(i), []).append((time.perf_counter() - t) * 1000)

        async def history() -> None:
            async with sessions() as s:
                await reports.search_contacts(
                    s, reports.ContactFilter(customer_id=1 + rnd.randrange(args.customers)), limit=51
                )

        async def pk_fetch() -> None:
            async with sessions() as s:
                await s.execute(select(Contact).where(Contact.id == 1 + rnd.randrange(args.contacts)))

        async def count_scan() -> None:
            async with sessions() as s:
                await s.scalar(select(func.count()).select_from(Contact))

        result = {
            "rollup_first_build_ms": round(rollup_build_ms, 1),
            "overview": figures(await timed(overview, args.repeat_overview, lambda: arrive(args.new_contacts))),
            "figures_part_days": figures(await timed(figures_part_days, args.repeat_overview)),
            "contact_log_page": figures(await timed(log_page, len(turns))),
            "customer_history": figures(await timed(history, args.repeat)),
            "baseline_pk_fetch": figures(await timed(pk_fetch, args.repeat)),
            "baseline_count_scan": figures(await timed(count_scan, 3)),
        }
        result["contact_log_by_filter"] = {
            _describe(filters[int(k)]): figures(v) for k, v in sorted(per_filter.items(), key=lambda kv: int(kv[0]))
        }
        base = result["baseline_pk_fetch"]["p99_ms"] or 0.01
        result["ratio"] = {
            "overview_p50_vs_count_scan": round(
                result["overview"]["p50_ms"] / result["baseline_count_scan"]["p50_ms"], 2
            ),
            "contact_log_p99_vs_pk_fetch": round(result["contact_log_page"]["p99_ms"] / base, 2),
            "history_p99_vs_pk_fetch": round(result["customer_history"]["p99_ms"] / base, 2),
        }
        result["targets_met"] = {
            "overview_under_1s": result["overview"]["max_ms"] < 1000,
            "figures_part_days_under_1s": result["figures_part_days"]["max_ms"] < 1000,
            "contact_log_p99_under_50ms": result["contact_log_page"]["p99_ms"] < 50,
            "history_p99_under_50ms": result["customer_history"]["p99_ms"] < 50,
        }
        return result
    finally:
        await engine.dispose()


async def pk_baseline(url: str, schema: str | None, args: argparse.Namespace) -> dict[str, float]:
    """The primary-key fetch alone: the baseline the pages are compared with when only pages are timed."""
    engine = make_engine(url, schema=schema)
    sessions = make_sessionmaker(engine)
    rnd = random.Random(11)

    async def pk_fetch() -> None:
        async with sessions() as s:
            await s.execute(select(Contact).where(Contact.id == 1 + rnd.randrange(args.contacts)))

    try:
        return figures(await timed(pk_fetch, args.repeat))
    finally:
        await engine.dispose()


def _describe(f: reports.ContactFilter) -> str:
    parts = [
        f"{k}={v if not isinstance(v, datetime) else 'last7d'}"
        for k, v in vars(f).items()
        if v not in ("", None, (), False)
    ]
    return ",".join(parts) or "unfiltered"


async def _kept_database(kind: str, schema: str) -> tuple[str, str | None, bool]:
    """The named schema, migrated; whether it holds a seeded log already (then it is reused as it is)."""
    if kind != "postgresql":
        sys.exit("--schema is for PostgreSQL")
    url = pg_url()
    await upgrade(url, schema=schema)
    engine = make_engine(url, schema=schema)
    try:
        async with engine.connect() as conn:
            seeded = (await conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM contacts)")).scalar()
    finally:
        await engine.dispose()
    return url, schema, bool(seeded)


async def bench_one(kind: str, args: argparse.Namespace) -> dict:
    if args.schema:
        url, schema, seeded = await _kept_database(kind, args.schema)
        drop = None
    else:
        (url, schema, drop), seeded = await fresh_database(kind), False
    try:
        phases = {"total": 0.0, "reused": 1.0}
        if not seeded:
            phases = await seed(
                url,
                schema,
                kind,
                args.customers,
                args.tickets,
                args.contacts,
                mode=args.seed,
                workers=args.seed_workers,
            )
        out = {
            "db": kind,
            "contacts": args.contacts,
            "customers": args.customers,
            "tickets": args.tickets,
            "seed_s": phases["total"],
            "seed_phases_s": phases,
            "seed_mode": args.seed,
        }
        freeze_startup_heap()  # as `tierdesk run` (which serves the dashboard) does once started
        if args.pages:
            out["baseline_pk_fetch"] = await pk_baseline(url, schema, args)
        else:
            out.update(await measure(url, schema, args))
        if not args.no_http:
            out["pages"] = await measure_pages(url, schema, args, out)
        return out
    finally:
        if drop is not None:
            await drop_database(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--tickets", type=int, default=200_000)
    p.add_argument(
        "--repeat", type=int, default=200, help="queries per history figure; a quarter of it per contact-log filter"
    )
    p.add_argument("--repeat-overview", type=int, default=5)
    p.add_argument(
        "--new-contacts",
        type=int,
        default=200,
        help="contacts logged before each overview, so its rollup refresh has a day to recount",
    )
    p.add_argument(
        "--seed",
        choices=("deferred", "plain"),
        default="deferred",
        help="PostgreSQL: build indexes and constraints after the bulk insert (default) or insert into "
        "the indexed schema",
    )
    p.add_argument("--seed-workers", type=int, default=2, help="connections inserting chunks at once")
    p.add_argument("--page-repeat", type=int, default=60, help="requests per page figure")
    p.add_argument(
        "--schema",
        help="PostgreSQL: seed this schema once and keep it; a later run with the same "
        "--schema (and sizes) reuses it, migrated to the current head",
    )
    p.add_argument("--no-http", action="store_true", help="only the repository figures")
    p.add_argument(
        "--pages",
        default="",
        help="only these pages through HTTP (comma-separated parts of their names, e.g. 'contact log,ticket page') "
        "and the primary-key baseline; no repository figures",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = [await bench_one(kind, args) for kind in await databases(args.db)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"== {r['db']}: {r['contacts']:,} contacts, {r['customers']:,} customers, {r['tickets']:,} tickets "
            f"(seeded in {r['seed_s']} s, {r['seed_mode']}: {r['seed_phases_s']})"
        )
        if "rollup_first_build_ms" in r:
            print(f"  rollup first build {r['rollup_first_build_ms']:.0f} ms (once per deployment)")
        repo_keys = (
            "overview",
            "figures_part_days",
            "contact_log_page",
            "customer_history",
            "baseline_pk_fetch",
            "baseline_count_scan",
        )
        for key in repo_keys:
            if key not in r:
                continue
            f = r[key]
            print(f"  {key:22} p50 {f['p50_ms']:9.2f} ms   p99 {f['p99_ms']:9.2f} ms   max {f['max_ms']:9.2f} ms")
        for name, f in r.get("contact_log_by_filter", {}).items():
            print(f"    log p50 {f['p50_ms']:8.2f} ms   p99 {f['p99_ms']:8.2f} ms  {name}")
        for name, f in r.get("pages", {}).items():
            print(
                f"  page p50 {f['p50_ms']:8.2f} ms   p99 {f['p99_ms']:8.2f} ms   max {f['max_ms']:8.2f} ms  "
                f"x{f['p99_vs_pk_fetch']:.1f} pk  {name}"
            )
        if "ratio" in r:
            print(f"  ratios: {r['ratio']}")
            print(f"  targets met: {r['targets_met']}")


if __name__ == "__main__":
    asyncio.run(main())
