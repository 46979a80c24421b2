"""The inbox's live pages: the database work of one tick (a second) for P open pages, as each page polled alone
before (its counts, and its ticket's marks: 1 + 4 statements) against the one poller of a process (one statement
for every page), on the same seeded database in the same run.

    .venv/bin/python -m bench.inbox_live --db postgresql --tickets 20000 --pages 1,10,50,200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import event, insert

from bench.pg import databases, pg_url
from bot.web.auth import Viewer
from bot.web.inbox.counts import counts_of
from bot.web.inbox.hub import LiveHub
from bot.web.inbox.shared import LocalPresence
from crm_store.engine import make_engine, make_sessionmaker, upgrade
from crm_store.models import Contact, Customer, Ticket, TicketEvent
from crm_store.repositories import tickets as tickets_repo

QUEUES = ("general", "vip", "billing", "returns")
STATUSES = ("open", "pending", "closed", "closed", "closed")


async def seed(sessions, tickets: int) -> list[int]:
    """`tickets` tickets of 500 customers over four queues (two in five active), three contacts and two events
    each; returns the active tickets' ids."""
    async with sessions() as s, s.begin():
        await s.execute(insert(Customer), [{"name": f"C{i}", "tier": "ordinary"} for i in range(500)])
        first = 1  # a fresh schema
        rows = [
            {
                "customer_id": first + i % 500,
                "channel": "webchat",
                "tier_at_open": "ordinary",
                "queue": QUEUES[i % 4],
                "status": STATUSES[i % 5],
                "assignee_id": None,
            }
            for i in range(tickets)
        ]
        for lo in range(0, tickets, 5000):
            await s.execute(insert(Ticket), rows[lo : lo + 5000])
        ids = list(range(1, tickets + 1))
        contacts = [
            {
                "channel": "webchat",
                "external_id": f"b-{t}-{k}",
                "direction": "in",
                "author": "customer",
                "address": "v",
                "customer_id": first + (t - 1) % 500,
                "ticket_id": t,
                "text": "hello",
            }
            for t in ids
            for k in range(3)
        ]
        for lo in range(0, len(contacts), 5000):
            await s.execute(insert(Contact), contacts[lo : lo + 5000])
        events = [{"ticket_id": t, "kind": "note", "data": {}} for t in ids for _ in range(2)]
        for lo in range(0, len(events), 5000):
            await s.execute(insert(TicketEvent), events[lo : lo + 5000])
    return [t for t in ids if STATUSES[(t - 1) % 5] != "closed"]


def viewers(pages: int) -> list[Viewer]:
    return [
        Viewer(agent_id=i + 1, name=f"Agent {i}", role="agent" if i % 2 else "supervisor", tiers=("ordinary",), csrf="")
        for i in range(pages)
    ]


async def per_page_tick(sessions, pages: list[tuple[Viewer, int | None]]) -> None:
    """Before: every page's stream read its own counts and its ticket's marks."""
    for viewer, ticket_id in pages:
        async with sessions() as session:
            counts_of(await tickets_repo.active_groups(session), viewer.actor)
            if ticket_id is not None:
                await tickets_repo.ticket_marks(session, ticket_id)


async def timed(fn: Callable[[], Awaitable[object]], rounds: int) -> float:
    await fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def measure(kind: str, args: argparse.Namespace) -> None:
    schema = None
    if kind == "postgresql":
        url, schema = pg_url(), f"bench_inbox_{uuid.uuid4().hex[:8]}"
    else:
        url = f"sqlite+aiosqlite:////tmp/bench-inbox-{uuid.uuid4().hex[:8]}.db"
    await upgrade(url, schema=schema)
    engine = make_engine(url, schema=schema)
    sessions = make_sessionmaker(engine)
    statements = 0

    def count(conn, cursor, statement: str, *rest: object) -> None:
        nonlocal statements
        statements += not statement.startswith("BEGIN")

    try:
        active = await seed(sessions, args.tickets)
        async with engine.connect() as conn:  # the planner's statistics, as autovacuum keeps them
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        print(f"\n{kind}: {args.tickets} tickets ({len(active)} active); median of {args.rounds} ticks")
        print(f"{'pages':>6} | {'per page: ms':>12} {'statements':>10} | {'poller: ms':>10} {'statements':>10}")
        for n in args.pages:
            pages = [(v, active[i % len(active)] if i % 3 else None) for i, v in enumerate(viewers(n))]
            hub = LiveHub(sessions, LocalPresence())
            for viewer, ticket_id in pages:
                await hub.join(viewer, ticket_id, poll=False)
            statements = 0
            old_ms = await timed(lambda p=pages: per_page_tick(sessions, p), args.rounds)
            old_n, statements = statements / (args.rounds + 1), 0
            new_ms = await timed(hub.tick, args.rounds)
            new_n = statements / (args.rounds + 1)
            print(f"{n:>6} | {old_ms:>12.2f} {old_n:>10.0f} | {new_ms:>10.2f} {new_n:>10.0f}")
    finally:
        await engine.dispose()
        if schema is not None:
            admin = make_engine(url)
            async with admin.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--pages", type=lambda v: [int(x) for x in v.split(",")], default=[1, 10, 50, 200])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    for kind in await databases(args.db):
        await measure(kind, args)


if __name__ == "__main__":
    asyncio.run(main())
