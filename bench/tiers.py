"""Benchmark: tiers for many customers, the value model (BG/NBD + Gamma-Gamma), and one routing decision among
many tickets and agents.

    python bench/tiers.py [--customers 1000000 --purchases 10000000] [--json]
    python bench/tiers.py --clv-only [--clv-sizes 100000,1000000] [--pg-url postgresql+asyncpg://...] [--pg-customers N]

The value model is timed in memory at each of --clv-sizes customers (fit + predict, from purchase arrays), and
through the database path: N customers and their purchases written to a fresh PostgreSQL schema (COPY), then
the repository's aggregate query, the fit and the prediction, each timed; the schema is dropped afterwards.
The quantile tiering of the same customers is the baseline measured in the same run.

Tiering is timed from raw purchase arrays (aggregation to RFM included) for the k-means method and for the
quantile method (the baseline) in the same run, each in a forked child process so that its peak resident size
(ru_maxrss, which includes the input arrays it inherits) is its own. Wall and CPU seconds are both shown: on a
busy machine the wall time grows, the CPU time does not. Routing: p50/p99 of `route()` for
a new ticket with 100 agents carrying 1,000 open tickets, and of `pick_next()` over 1,000 waiting tickets.
Targets: tiers < 60 s and < 2 GB; routing p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.cli.seed import synthetic_purchases
from bot.routing.policy import TIER_ORDER, AgentState, RouteRequest, RoutingPolicy, WaitingTicket, pick_next, route
from bot.routing.tiering import TIERS, ValueTable, aggregate_purchases, compute_tiers


def timed_tiers(data, method: str, k: int | None) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    recency, frequency, monetary, refs, loyalty = aggregate_purchases(
        data.customer_index, data.amount, data.age_days, data.n_customers, data.referrals, data.loyalty
    )
    values = ValueTable(np.arange(data.n_customers), recency, frequency, monetary, refs, loyalty)
    result = compute_tiers(values, method=method, k=k)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = {TIERS[c]: int(n) for c, n in enumerate(np.bincount(result.codes, minlength=4))}
    return {
        "method": result.method,
        "k": result.k,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "silhouette": result.silhouette,
        "stability_ari": result.stability_ari,
        "tiers": counts,
        "revenue_share": {t.tier: round(t.revenue_share, 3) for t in result.tiers},
    }


def in_child(data, method: str, k: int | None) -> dict:
    """Run `timed_tiers` in a forked process, so its peak memory is measured on its own."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def work() -> None:
        send.send(timed_tiers(data, method, k))

    child = ctx.Process(target=work)
    child.start()
    result = receive.recv()
    child.join()
    return result


def timed_clv(n_customers: int, purchases_per_customer: int, seed: int = 42) -> dict:
    """Fit + predict of the value model in memory, from raw purchase arrays, and the quantile tiering baseline."""
    from bot.routing.tier_service import predict_value

    data = synthetic_purchases(n_customers, n_customers * purchases_per_customer, seed=seed)
    recency, frequency, monetary, refs, loyalty, tenure = aggregate_purchases(
        data.customer_index, data.amount, data.age_days, data.n_customers, data.referrals, data.loyalty
    )
    values = ValueTable(np.arange(n_customers), recency, frequency, monetary, refs, loyalty, tenure_days=tenure)
    t0, c0 = time.perf_counter(), time.process_time()
    _predicted, _alive, info = predict_value(values)
    clv_s, clv_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    compute_tiers(values, method="quantiles", evaluate=False)
    base_s = time.perf_counter() - t0
    return {
        "customers": n_customers,
        "purchases": len(data.amount),
        "clv_seconds": round(clv_s, 2),
        "clv_cpu_seconds": round(clv_cpu, 2),
        "fit_seconds": info.get("fit_seconds"),
        "quantiles_seconds": round(base_s, 2),
        "clv_vs_quantiles_time_ratio": round(clv_s / max(base_s, 1e-9), 2),
        "bgnbd": info.get("bgnbd"),
        "predicted_value_12m": info.get("predicted_value_12m"),
    }


async def _copy_seed(engine, schema: str, n_customers: int, purchases_per_customer: int) -> tuple[int, float]:
    """Synthetic customers and purchases into the schema with COPY (the bench's own fast path, not the app's)."""
    from bot.cli.seed import synthetic_purchases as make

    today = datetime.now(UTC)
    data = make(n_customers, n_customers * purchases_per_customer, seed=42, today=today)
    t0 = time.perf_counter()
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        customers = [
            (
                i + 1,
                f"bench-{i + 1}",
                f"Customer {i + 1}",
                "potential",
                "no purchases yet",
                "lead",
                "en",
                today,
                today,
                False,
            )
            for i in range(n_customers)
        ]
        await raw.copy_records_to_table(
            "customers",
            records=customers,
            schema_name=schema,
            columns=[
                "id",
                "external_ref",
                "name",
                "tier",
                "tier_reason",
                "lifecycle_stage",
                "language",
                "created_at",
                "updated_at",
                "legal_hold",
            ],
        )
        del customers
        step = 1_000_000
        for start in range(0, len(data.amount), step):
            end = min(start + step, len(data.amount))
            rows = [
                (
                    j + 1,
                    int(c) + 1,
                    Decimal(f"{a:.2f}"),
                    "USD",
                    today - timedelta(days=float(d)),
                    int(r),
                    int(lo),
                    f"bench-{j}",
                )
                for j, c, a, d, r, lo in zip(
                    range(start, end),
                    data.customer_index[start:end].tolist(),
                    data.amount[start:end].tolist(),
                    data.age_days[start:end].tolist(),
                    data.referrals[start:end].tolist(),
                    data.loyalty[start:end].tolist(),
                    strict=True,
                )
            ]
            await raw.copy_records_to_table(
                "value_events",
                records=rows,
                schema_name=schema,
                columns=[
                    "id",
                    "customer_id",
                    "amount",
                    "currency",
                    "occurred_at",
                    "referrals",
                    "loyalty_points",
                    "source_key",
                ],
            )
        await raw.execute(f'ANALYZE "{schema}".value_events; ANALYZE "{schema}".customers')
    return len(data.amount), time.perf_counter() - t0


async def database_clv(url: str, n_customers: int, purchases_per_customer: int) -> dict:
    """The value model through the database path: aggregate query, fit and prediction on PostgreSQL data."""
    import os

    from bot.routing.tier_service import load_values, predict_value
    from crm_store.engine import make_engine, make_sessionmaker, upgrade

    schema = f"bench_tiers_{os.getpid()}"
    await upgrade(url, schema=schema)
    engine = make_engine(url, schema=schema)
    try:
        purchases, seed_s = await _copy_seed(engine, schema, n_customers, purchases_per_customer)
        sessions = make_sessionmaker(engine)
        t0 = time.perf_counter()
        async with sessions() as session:
            loaded = await load_values(session, datetime.now(UTC))
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _predicted, _alive, info = predict_value(loaded.values)
        clv_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compute_tiers(loaded.values, method="quantiles", evaluate=False)
        base_s = time.perf_counter() - t0
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await engine.dispose()
    return {
        "customers": n_customers,
        "purchases": purchases,
        "seed_copy_seconds": round(seed_s, 2),
        "load_query_seconds": round(load_s, 2),
        "clv_fit_predict_seconds": round(clv_s, 2),
        "fit_seconds": info.get("fit_seconds"),
        "load_plus_clv_seconds": round(load_s + clv_s, 2),
        "quantiles_seconds": round(base_s, 2),
        "bgnbd": info.get("bgnbd"),
    }


def clv_main(args) -> int:
    import asyncio

    sizes = [int(x) for x in args.clv_sizes.split(",") if x]
    out: dict = {"in_memory": []}
    for n in sizes:
        out["in_memory"].append(timed_clv(n, args.clv_purchases_per_customer))
        print(f"  in memory, {n:,} customers: done", file=sys.stderr, flush=True)
    if args.pg_url:
        out["database"] = asyncio.run(database_clv(args.pg_url, args.pg_customers, args.clv_purchases_per_customer))
    if args.json:
        print(json.dumps(out))
        return 0
    for r in out["in_memory"]:
        print(
            f"value model in memory, {r['customers']:,} customers / {r['purchases']:,} purchases: fit + predict "
            f"{r['clv_seconds']:.2f} s (cpu {r['clv_cpu_seconds']:.2f} s; fit {r['fit_seconds']:.2f} s); quantile "
            f"tiers {r['quantiles_seconds']:.2f} s; ratio {r['clv_vs_quantiles_time_ratio']}x; {r['bgnbd']}"
        )
    d = out.get("database")
    if d:
        print(
            f"value model through PostgreSQL, {d['customers']:,} customers / {d['purchases']:,} purchases: "
            f"aggregate query {d['load_query_seconds']:.2f} s + fit and predict {d['clv_fit_predict_seconds']:.2f} s"
            f" = {d['load_plus_clv_seconds']:.2f} s (fit {d['fit_seconds']:.2f} s; COPY of the data "
            f"{d['seed_copy_seconds']:.2f} s; quantile tiers {d['quantiles_seconds']:.2f} s)"
        )
    return 0


def percentiles(wall: list[float], cpu: list[float]) -> dict:
    """Wall-clock and thread-CPU percentiles: on a busy machine the wall p99 includes time spent descheduled."""
    w, c = np.asarray(wall) * 1000, np.asarray(cpu) * 1000
    return {
        "p50_ms": round(float(np.percentile(w, 50)), 4),
        "p99_ms": round(float(np.percentile(w, 99)), 4),
        "cpu_p50_ms": round(float(np.percentile(c, 50)), 4),
        "cpu_p99_ms": round(float(np.percentile(c, 99)), 4),
    }


def routing_bench(n_agents: int, n_tickets: int, decisions: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    policy = RoutingPolicy.load(Path(__file__).resolve().parents[1] / "config" / "routing.toml")
    now = datetime.now(UTC)
    loads = np.bincount(rng.integers(0, n_agents, n_tickets), minlength=n_agents)
    langs = [("en",), ("zh",), ("ru",), ("en", "ru"), ()]
    agents = [
        AgentState(
            id=i + 1,
            status="online" if rng.random() < 0.85 else "away",
            tiers=() if i % 4 == 0 else tuple(rng.choice(TIER_ORDER, 2, replace=False)),
            languages=langs[i % len(langs)],
            skills=("billing",) if i % 3 == 0 else (),
            capacity=int(loads[i]) + int(rng.integers(0, 4)),
            open_tickets=int(loads[i]),
            idle_since=now - timedelta(minutes=int(rng.integers(0, 600))),
        )
        for i in range(n_agents)
    ]
    waiting = [
        WaitingTicket(
            i,
            str(rng.choice(TIER_ORDER)),
            int(rng.integers(1, 5)),
            now - timedelta(seconds=int(s)),
            language=str(rng.choice(["en", "zh", "ru"])),
        )
        for i, s in enumerate(rng.integers(0, 86_400, n_tickets))
    ]
    requests = [
        RouteRequest(
            str(rng.choice(TIER_ORDER)),
            now,
            language=str(rng.choice(["en", "zh", "ru"])),
            skill="billing" if rng.random() < 0.2 else None,
            key_account_manager_id=int(rng.integers(1, n_agents + 1)) if rng.random() < 0.1 else None,
        )
        for _ in range(decisions)
    ]
    route_times, route_cpu, pick_times, pick_cpu = [], [], [], []
    for req in requests:
        t0, c0 = time.perf_counter(), time.thread_time()
        route(req, agents, policy)
        route_times.append(time.perf_counter() - t0)
        route_cpu.append(time.thread_time() - c0)
    for i in range(decisions):
        agent = agents[i % n_agents]
        t0, c0 = time.perf_counter(), time.thread_time()
        pick_next(waiting, agent)
        pick_times.append(time.perf_counter() - t0)
        pick_cpu.append(time.thread_time() - c0)
    return {
        "agents": n_agents,
        "open_tickets": n_tickets,
        "decisions": decisions,
        "route": percentiles(route_times, route_cpu),
        "pick_next": percentiles(pick_times, pick_cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--k", type=int, default=None, help="fixed k (default: chosen by silhouette)")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--tickets", type=int, default=1_000)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--clv-only", action="store_true", help="only the value model benchmarks")
    parser.add_argument("--clv-sizes", default="100000,1000000", help="customers for the in-memory value model")
    parser.add_argument("--clv-purchases-per-customer", type=int, default=5)
    parser.add_argument("--pg-url", default="", help="PostgreSQL URL for the database path (a schema is made)")
    parser.add_argument("--pg-customers", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.clv_only:
        return clv_main(args)

    import sklearn.cluster
    import sklearn.metrics  # noqa: F401 - imported before timing: the bench measures the work, not the import

    t0 = time.perf_counter()
    data = synthetic_purchases(args.customers, args.purchases, seed=42)
    generate_s = time.perf_counter() - t0
    kmeans = in_child(data, "kmeans", args.k)
    quantile = in_child(data, "quantile", None)
    routing = routing_bench(args.agents, args.tickets, args.decisions)
    out = {
        "customers": args.customers,
        "purchases": args.purchases,
        "generate_seconds": round(generate_s, 2),
        "kmeans": kmeans,
        "quantile_baseline": quantile,
        "kmeans_vs_quantile_time_ratio": round(kmeans["seconds"] / max(quantile["seconds"], 1e-9), 2),
        "routing": routing,
        "targets_met": {
            "tiers_under_60s": kmeans["seconds"] < 60,
            "peak_under_2gb": kmeans["peak_rss_mb"] < 2048,
            "route_p99_under_5ms": routing["route"]["p99_ms"] < 5,
            "route_cpu_p99_under_5ms": routing["route"]["cpu_p99_ms"] < 5,
            "pick_next_p99_under_5ms": routing["pick_next"]["p99_ms"] < 5,
        },
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"synthetic data: {args.customers:,} customers, {args.purchases:,} purchases ({generate_s:.1f} s to make)")
    for name, r in (("k-means", kmeans), ("quantile (baseline)", quantile)):
        sil = "—" if r["silhouette"] is None else f"{r['silhouette']:.3f}"
        ari = "—" if r["stability_ari"] is None else f"{r['stability_ari']:.3f}"
        print(
            f"  {name:20s} {r['seconds']:7.2f} s (cpu {r['cpu_seconds']:.2f} s)  peak RSS {r['peak_rss_mb']:8.1f} MB"
            f"  k={r['k']}  silhouette {sil}"
            f"  ARI {ari}  {r['tiers']}"
        )
    print(f"  k-means / quantile time ratio: {out['kmeans_vs_quantile_time_ratio']}x")
    print(f"routing with {args.agents} agents and {args.tickets:,} open tickets, {args.decisions:,} decisions:")
    for name in ("route", "pick_next"):
        r = routing[name]
        print(
            f"  {name + '()':12s} wall p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms   "
            f"cpu p50 {r['cpu_p50_ms']:.3f} ms  p99 {r['cpu_p99_ms']:.3f} ms"
        )
    print(f"targets met: {out['targets_met']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
