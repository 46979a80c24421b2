"""Composite-key lookups as the contact log and the customer base grow: every batch asks who wrote (identities by
channel + address) and every batch with a redelivery asks for the earlier copy (contacts by channel + external id
+ direction). Both must cost the same at 20,000 rows as at 500,000.

    python bench/key_lookups.py                     # SQLite and, if reachable, PostgreSQL
    python bench/key_lookups.py --db sqlite --sizes 20000 200000 --json

For each size: ms per call of `who_wrote` (5 senders) and `existing_contacts` (5 keys), the baseline (5 primary-key
fetches in one IN-list, the cheapest lookup there is) measured on the same database, and the ratio of each to the
baseline. The ratio staying flat from the smallest size to the largest is the target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from bench.ingest import _drop, fresh_database
from bench.pg import databases
from crm_store.engine import make_engine, make_sessionmaker
from crm_store.models import Contact, Customer, Identity, now
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo

CHANNELS = ("telegram", "email", "webchat")


async def seed(engine, n: int) -> None:
    """`n` customers with one identity each, and `n` contacts, in plain batched inserts."""
    at = now()
    async with engine.begin() as conn:
        for start in range(0, n, 5000):
            ids = range(start + 1, min(start + 5000, n) + 1)
            await conn.execute(insert(Customer.__table__), [
                {"id": i, "name": f"c{i}", "tier": "ordinary", "lifecycle_stage": "customer", "created_at": at,
                 "updated_at": at} for i in ids])
            await conn.execute(insert(Identity.__table__), [
                {"customer_id": i, "channel": CHANNELS[i % 3], "address": f"a{i}", "display_name": "",
                 "created_at": at} for i in ids])
            await conn.execute(insert(Contact.__table__), [
                {"channel": CHANNELS[i % 3], "external_id": f"m{i}", "direction": "in", "author": "customer",
                 "address": f"a{i}", "customer_id": i, "text": "hello", "attachments": [], "created_at": at,
                 "logged_at": at, "truncated": False} for i in ids])


async def timed(fn, calls: int) -> float:
    """Median ms of `calls` calls."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def one_size(kind: str, n: int, calls: int) -> dict:
    url, schema, drop = await fresh_database(kind)
    engine = make_engine(url, schema=schema)
    try:
        await seed(engine, n)
        if kind == "postgresql":
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        sessions = make_sessionmaker(engine)
        picks = [n // 7 * k + 1 for k in range(1, 6)]
        pairs = [(CHANNELS[i % 3], f"a{i}") for i in picks]
        keys = [(CHANNELS[i % 3], f"m{i}", "in") for i in picks]
        async with sessions() as s:

            async def who() -> None:
                assert len((await customers_repo.who_wrote(s, pairs))[1]) == 5

            async def earlier() -> None:
                assert len(await contacts_repo.existing_contacts(s, keys)) == 5
                s.expunge_all()

            async def by_pk() -> None:
                assert len((await s.execute(select(Customer.id).where(Customer.id.in_(picks)))).all()) == 5

            for fn in (who, earlier, by_pk):  # warm statement caches
                await fn()
            base = await timed(by_pk, calls)
            who_ms, earlier_ms = await timed(who, calls), await timed(earlier, calls)
            base = (base + await timed(by_pk, calls)) / 2
        return {"rows": n, "baseline_ms": round(base, 3), "who_wrote_ms": round(who_ms, 3),
                "existing_contacts_ms": round(earlier_ms, 3), "who_wrote_ratio": round(who_ms / base, 2),
                "existing_contacts_ratio": round(earlier_ms / base, 2)}
    finally:
        await engine.dispose()
        await _drop(drop)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 500_000])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    kinds = await databases(args.db)
    out = {kind: [await one_size(kind, n, args.calls) for n in args.sizes] for kind in kinds}
    if args.json:
        print(json.dumps(out))
        return
    for kind, rows in out.items():
        print(f"{kind}:")
        for r in rows:
            print(f"  {r['rows']:>9,} rows  baseline {r['baseline_ms']:.3f} ms   who wrote {r['who_wrote_ms']:.3f} ms "
                  f"(x{r['who_wrote_ratio']})   earlier copies {r['existing_contacts_ms']:.3f} ms "
                  f"(x{r['existing_contacts_ratio']})")


if __name__ == "__main__":
    asyncio.run(main())
