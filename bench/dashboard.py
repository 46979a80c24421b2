"""Dashboard benchmark: seed a large CRM (bulk, in the database), then time what supervisors wait for — the
overview aggregates, a filtered contact-log page, a customer's history — against baselines measured in the
same run (a primary-key fetch and a full count(*) scan of the contact log).

    python bench/dashboard.py                                   # SQLite and, if reachable, PostgreSQL
    python bench/dashboard.py --db postgresql --contacts 1000000 --customers 100000 --tickets 200000 --json
    TIERDESK_BENCH_POSTGRES_URL=postgresql+asyncpg://... python bench/dashboard.py --db postgresql

Targets: overview < 1 s; contact-log page and history p99 < 50 ms. Each timed overview first logs
`--new-contacts` contacts and refreshes the contacts-per-day rollup, as the page does; the rollup's first build
(once per deployment) is reported on its own. One contact in DESK_EVERY is desk traffic (no customer, no ticket),
which every view but "include desk traffic" leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select

from bench.ingest import _drop, fresh_database
from bench.pg import databases
from bot.app import freeze_startup_heap
from crm_store.engine import make_engine, make_sessionmaker
from crm_store.models import Contact
from crm_store.repositories import contact_days, reports
from crm_store.repositories import figures as ticket_figures

DAYS = 180
WORDS = ("refund", "order", "parcel", "delivery", "invoice", "broken", "thanks", "password", "account", "late",
         "size", "return", "hello", "price", "discount", "warranty")
INTENTS = ("refund", "shipping", "billing", "password_reset", "greeting", "complaint")
RUSSIAN = ("где мой заказ", "верните деньги", "Спасибо за помощь", "посылка не пришла")
CHINESE = ("我想退款", "包裹还没到", "谢谢你的帮助", "订单在哪里")
RARE = "xylophone"  # one contact in RARE_EVERY
RARE_EVERY = 5000
DESK_EVERY = 8  # a trial's log held about a quarter; a busy desk's customers outnumber its agents more



def _sql(kind: str) -> dict[str, str]:
    """Dialect pieces for the generators: a uniform random in [0,1), a random int below n, a timestamp."""
    if kind == "postgresql":
        return {"r": "random()", "ri": "floor(random()*{n})::int", "ago": "now() - random() * interval '{d} days'",
                "gen": "FROM generate_series(1, {n}) AS s(g)", "pre": "", "json": "jsonb_build_object('intent', {v})",
                "plus_s": "({t}) + ({s}) * interval '1 second'"}
    return {"r": "(abs(random()) % 1000000) / 1000000.0", "ri": "(abs(random()) % {n})",
            "ago": "datetime('now', '-' || (abs(random()) % ({d} * 86400)) || ' seconds')",
            "gen": "FROM s", "pre": "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) ",
            "json": "json_object('intent', {v})", "plus_s": "datetime({t}, '+' || CAST({s} AS INTEGER) || ' seconds')"}


def _pick(kind: str, values: tuple[str, ...]) -> str:
    d = _sql(kind)
    cases = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE {d['ri'].format(n=len(values))} {cases} END)"


async def seed(url: str, schema: str | None, kind: str, customers: int, tickets: int, contacts: int) -> float:
    """Fill customers, agents, tickets and contacts with generated rows, inside the database (fast)."""
    d = _sql(kind)
    r, ago = d["r"], d["ago"].format(d=DAYS)
    tier = ("(CASE WHEN x < 0.03 THEN 'VIP' WHEN x < 0.15 THEN 'important' WHEN x < 0.6 THEN 'ordinary' "
            "ELSE 'potential' END)")
    # Three English words and a number; every tenth contact also has a Russian phrase, every tenth a Chinese one,
    # and one in RARE_EVERY the rare word.
    text = (" || ' ' || ".join([_pick(kind, WORDS)] * 3) + " || ' order ' || CAST(g AS TEXT) || "
            f"(CASE WHEN g % {RARE_EVERY} = 0 THEN ' {RARE}' WHEN g % 10 = 3 THEN ' ' || {_pick(kind, RUSSIAN)} "
            f"WHEN g % 10 = 7 THEN ' ' || {_pick(kind, CHINESE)} ELSE '' END)")
    cust = lambda: f"(1 + {d['ri'].format(n=customers)})"  # noqa: E731
    statements = [
        f"{d['pre'].format(n=20)}INSERT INTO agents (id, name, role, tiers, queues, languages, skills, "
        f"capacity, status, created_at) SELECT g, 'Agent ' || CAST(g AS TEXT), 'agent', '[]', '[]', '[]', '[]', "
        f"8, 'online', {ago} "
        f"{d['gen'].format(n=20)}",
        f"{d['pre'].format(n=customers)}INSERT INTO customers (id, name, tier, tier_reason, lifecycle_stage, "
        f"created_at, updated_at) SELECT g, 'Customer ' || CAST(g AS TEXT), {tier}, 'bench', 'customer', {ago}, "
        f"{ago} FROM "
        f"(SELECT g, {r} AS x {d['gen'].format(n=customers)}) AS c",
        f"{d['pre'].format(n=tickets)}INSERT INTO tickets (id, customer_id, channel, status, priority, tier_at_open, "
        f"queue, assignee_id, subject, escalation_level, created_at, updated_at, first_responded_at, solved_at, "
        f"sla_breached_at, csat) SELECT g, cid, 'email', st, 3, {tier}, q, 1 + g % 20, 'Subject ' || CAST(g AS TEXT), "
        f"0, t, t, {d['plus_s'].format(t='t', s='60 + x * 7200')}, "
        f"CASE WHEN st = 'closed' THEN {d['plus_s'].format(t='t', s='3600 + x * 200000')} END, "
        f"CASE WHEN x > 0.95 THEN t END, CASE WHEN x < 0.3 THEN 1 + g % 5 END "
        f"FROM (SELECT g, {cust()} AS cid, {r} AS x, {ago} AS t, "
        f"(CASE WHEN g % 10 = 0 THEN 'open' WHEN g % 20 = 1 THEN 'pending' ELSE 'closed' END) AS st, "
        f"{_pick(kind, ('general', 'vip', 'billing', 'shipping'))} AS q {d['gen'].format(n=tickets)}) AS src",
        f"{d['pre'].format(n=contacts)}INSERT INTO contacts (id, channel, external_id, direction, author, address, "
        f"customer_id, agent_id, ticket_id, text, attachments, nlu, truncated, created_at, logged_at, desk) "
        f"SELECT g, {_pick(kind, ('telegram', 'email', 'webchat'))}, 'b' || CAST(g AS TEXT), dir, "
        f"CASE WHEN g % {DESK_EVERY} = 1 THEN (CASE WHEN dir = 'in' THEN 'agent' ELSE 'system' END) "
        f"WHEN dir = 'in' THEN 'customer' WHEN x < 0.5 THEN 'agent' ELSE 'bot' END, 'addr', "
        f"CASE WHEN g % {DESK_EVERY} <> 1 THEN {cust()} END, "
        f"CASE WHEN g % {DESK_EVERY} = 1 OR (dir = 'out' AND x < 0.5) THEN 1 + g % 20 END, "
        f"CASE WHEN x < 0.6 AND g % {DESK_EVERY} <> 1 THEN 1 + {d['ri'].format(n=tickets)} END, {text}, '[]', "
        f"CASE WHEN dir = 'in' AND x < 0.7 THEN {d['json'].format(v=_pick(kind, INTENTS))} END, false, t, t, "
        f"g % {DESK_EVERY} = 1 "
        f"FROM (SELECT g, {r} AS x, {ago} AS t, CASE WHEN g % 20 < 11 THEN 'in' ELSE 'out' END AS dir "
        f"{d['gen'].format(n=contacts)}) AS src",
    ]
    if kind == "sqlite":
        statements = [s.replace("false, t, t", "0, t, t") for s in statements]
    engine = make_engine(url, schema=schema)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            for stmt in statements:
                await conn.exec_driver_sql(stmt)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await engine.dispose()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    await fn()  # warm the cache and the statement cache
    out = []
    for _ in range(repeat):
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
    since, until = now - timedelta(days=30), now
    try:
        writers = make_sessionmaker(engine, writer=True)
        fresh = iter(range(10**9))

        async def refresh(new_contacts: int) -> None:
            """As the overview page does: new contacts have arrived since the last look, the rollup catches up."""
            async with writers() as s, s.begin():
                if new_contacts:
                    stamp = datetime.now(UTC)
                    await s.execute(insert(Contact), [
                        {"id": args.contacts + 1 + (k := next(fresh)), "channel": "webchat", "external_id": f"new-{k}",
                         "direction": "in", "customer_id": 1 + rnd.randrange(args.customers), "text": "new contact",
                         "attachments": [], "created_at": stamp, "logged_at": stamp} for _ in range(new_contacts)])
                await contact_days.refresh_contact_days(s)

        started = time.perf_counter()
        await refresh(0)  # the first refresh counts the whole log once (a deployment's first overview)
        rollup_build_ms = (time.perf_counter() - started) * 1000

        async def overview() -> None:
            await refresh(args.new_contacts)
            async with sessions() as s:
                await reports.contacts_per_day(s, since, until, by="channel")
                await reports.contacts_per_day(s, since, until, by="tier")
                await reports.backlog_by_queue(s)
                await ticket_figures.figures(s, since, until)

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
                await reports.search_contacts(s, reports.ContactFilter(customer_id=1 + rnd.randrange(args.customers)),
                                              limit=51)

        async def pk_fetch() -> None:
            async with sessions() as s:
                await s.execute(select(Contact).where(Contact.id == 1 + rnd.randrange(args.contacts)))

        async def count_scan() -> None:
            async with sessions() as s:
                await s.scalar(select(func.count()).select_from(Contact))

        result = {
            "rollup_first_build_ms": round(rollup_build_ms, 1),
            "overview": figures(await timed(overview, args.repeat_overview)),
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
                result["overview"]["p50_ms"] / result["baseline_count_scan"]["p50_ms"], 2),
            "contact_log_p99_vs_pk_fetch": round(result["contact_log_page"]["p99_ms"] / base, 2),
            "history_p99_vs_pk_fetch": round(result["customer_history"]["p99_ms"] / base, 2),
        }
        result["targets_met"] = {
            "overview_under_1s": result["overview"]["max_ms"] < 1000,
            "contact_log_p99_under_50ms": result["contact_log_page"]["p99_ms"] < 50,
            "history_p99_under_50ms": result["customer_history"]["p99_ms"] < 50,
        }
        return result
    finally:
        await engine.dispose()


def _describe(f: reports.ContactFilter) -> str:
    parts = [f"{k}={v if not isinstance(v, datetime) else 'last7d'}"
             for k, v in vars(f).items() if v not in ("", None, (), False)]
    return ",".join(parts) or "unfiltered"


async def bench_one(kind: str, args: argparse.Namespace) -> dict:
    url, schema, drop = await fresh_database(kind)
    try:
        seconds = await seed(url, schema, kind, args.customers, args.tickets, args.contacts)
        out = {"db": kind, "contacts": args.contacts, "customers": args.customers, "tickets": args.tickets,
               "seed_s": round(seconds, 1)}
        freeze_startup_heap()  # as `tierdesk run` (which serves the dashboard) does once started
        out.update(await measure(url, schema, args))
        return out
    finally:
        await _drop(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--tickets", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=200,
                   help="queries per history figure; a quarter of it per contact-log filter")
    p.add_argument("--repeat-overview", type=int, default=5)
    p.add_argument("--new-contacts", type=int, default=200,
                   help="contacts logged before each overview, so its rollup refresh has a day to recount")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = [await bench_one(kind, args) for kind in await databases(args.db)]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"== {r['db']}: {r['contacts']:,} contacts, {r['customers']:,} customers, {r['tickets']:,} tickets "
              f"(seeded in {r['seed_s']} s)")
        print(f"  rollup first build {r['rollup_first_build_ms']:.0f} ms (once per deployment)")
        for key in ("overview", "contact_log_page", "customer_history", "baseline_pk_fetch", "baseline_count_scan"):
            f = r[key]
            print(f"  {key:22} p50 {f['p50_ms']:9.2f} ms   p99 {f['p99_ms']:9.2f} ms   max {f['max_ms']:9.2f} ms")
        for name, f in r["contact_log_by_filter"].items():
            print(f"    log p50 {f['p50_ms']:8.2f} ms   p99 {f['p99_ms']:8.2f} ms  {name}")
        print(f"  ratios: {r['ratio']}")
        print(f"  targets met: {r['targets_met']}")


if __name__ == "__main__":
    asyncio.run(main())
