"""`tierdesk import ...`, `tierdesk tiers ...` and `tierdesk seed-data`: value data in, tiers out.

Each command opens its own engine from the settings and creates the schema first on an empty database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.importers.csv_import import ImportFileError, ImportReport, import_customers, import_purchases
from bot.settings import get_settings
from crm_store.engine import make_engine, make_sessionmaker, needs_upgrade, upgrade

T = TypeVar("T")
console = Console()
errors = Console(stderr=True)

import_app = typer.Typer(help="Import customers and purchases from CSV files.", no_args_is_help=True)
tiers_app = typer.Typer(help="Compute customer tiers and show how they look.", no_args_is_help=True)
MAX_PROBLEMS_SHOWN = 50


def with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Open the configured database (migrating an empty one), run `work`, close it."""

    async def _run() -> T:
        settings = get_settings()
        engine = make_engine(settings.database_url, schema=settings.database_schema)
        try:
            if await needs_upgrade(engine):
                await upgrade(settings.database_url, schema=settings.database_schema)
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def show_import(report: ImportReport) -> None:
    console.print(report.summary())
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        console.print(f"  line {problem.line}: {problem.reason}", markup=False, highlight=False)
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        console.print(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more refused rows")


def _import(kind: str, path: Path) -> None:
    runner = import_customers if kind == "customers" else import_purchases
    try:
        report = with_database(lambda sessions: runner(sessions, path))
    except ImportFileError as exc:
        raise fail(f"{path}: {exc}") from None
    show_import(report)
    if report.problems:
        raise typer.Exit(1)


@import_app.command("customers")
def customers(
    path: Path = typer.Argument(
        ...,
        help="CSV: customer,name,email,phone,telegram,language,tier,key_account_manager (only customer is required)",
    ),
) -> None:
    """Create or update customers with their email, phone and Telegram identities."""
    _import("customers", path)


PURCHASES_HELP = "CSV: customer,amount,currency,occurred_at[,referrals,loyalty_points]; a negative amount is a refund"


@import_app.command("purchases")
def purchases(path: Path = typer.Argument(..., help=PURCHASES_HELP)) -> None:
    """Add purchases and refunds; rows imported before are skipped."""
    _import("purchases", path)


@tiers_app.command("compute")
def compute(
    method: str | None = typer.Option(None, help="rfm-kmeans, clv or quantiles (default: the tiering.method setting)"),
    k: int | None = typer.Option(None, help="Number of clusters (default: chosen by silhouette)"),
    seed: int = typer.Option(0, help="Random seed for reproducible clusters"),
) -> None:
    """Segment all customers by value and store the tiers, the run and the tier history."""
    from bot.routing.tier_service import compute_and_store
    from bot.routing.tiering import METHODS

    method = method or get_settings().tiering.method
    if method not in METHODS:
        raise fail(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if k is not None and k < 3:
        raise fail("--k must be at least 3")
    summary = with_database(lambda sessions: compute_and_store(sessions, method=method, k=k, seed=seed))
    note = summary.report.get("note")
    if note:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"run {summary.run_id}: {summary.customers} customers tiered, {summary.changed} changed tier")
    show_report(summary.report)


@tiers_app.command("report")
def report(as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables")) -> None:
    """The last run's evaluation: size, revenue, the rule, routing per tier; relevance against quantile tiers on
    a time split; stability; the value model."""
    from bot.routing.tier_service import latest_report, report_object

    found = with_database(latest_report)
    if found is None:
        raise fail("no tier run yet: run `tierdesk tiers compute` first", 1)
    if as_json:
        typer.echo(json.dumps(report_object(found, found["changed_since_last"])))
        return
    show_report(found)


@tiers_app.command("moves")
def moves(
    old: str = typer.Option(..., "--from", help="Tier in the run before the last"),
    new: str = typer.Option(..., "--to", help="Tier in the last run"),
    limit: int = typer.Option(200, min=1, max=100_000, help="At most this many customers"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Who moved from one tier to another between the last two runs, the most valuable first."""
    from bot.routing import tier_history

    async def work(sessions):
        async with sessions() as session:
            return await tier_history.moves(session, old, new, limit=limit)

    try:
        span, rows = with_database(work)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if span.from_run is None:
        raise fail("moves need two tier runs: run `tierdesk tiers compute` again later", 1)
    found = [
        {
            "customer_id": cid,
            "name": name,
            "reason": reason,
            "predicted_value_12m": _round(value, 2),
            "p_alive": _round(alive, 3),
        }
        for cid, name, reason, value, alive in rows
    ]
    if as_json:
        typer.echo(
            json.dumps({"from_run": span.from_run, "to_run": span.to_run, "from": old, "to": new, "customers": found})
        )
        return
    table = Table(title=f"{old} → {new} (run {span.from_run} → run {span.to_run}): {len(found)} customers")
    for col in ("customer", "name", "predicted 12-month value", "p(alive)", "why"):
        table.add_column(col)
    for f in found:
        table.add_row(
            f"C-{f['customer_id']}",
            f["name"],
            _fmt(f["predicted_value_12m"], ",.2f"),
            _fmt(f["p_alive"], ".0%"),
            f["reason"],
        )
    console.print(table)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def show_report(data: dict) -> None:
    table = Table(title=f"Tiers ({data.get('method')}, k={data.get('k') or '—'})")
    for col in (
        "tier",
        "customers",
        "customers %",
        "revenue %",
        "recency (days)",
        "orders",
        "net spend",
        "12-month value",
        "queue · SLA first reply",
    ):
        table.add_column(col, justify="left" if col == "tier" else "right")
    routing = data.get("actionability") or {}
    for t in data.get("tiers", []):
        act = routing.get(t["tier"])
        table.add_row(
            t["tier"],
            f"{t['customers']:,}",
            f"{t['customer_share'] * 100:.1f}",
            f"{t['revenue_share'] * 100:.1f}",
            _fmt(t["recency_days"], ",.1f"),
            _fmt(t["frequency"], ",.2f"),
            _fmt(t["monetary"], ",.2f"),
            _fmt(t.get("predicted_value_12m"), ",.2f"),
            f"{act['queue']} · {act['first_response_minutes']:g} min" if act else "—",
        )
    console.print(table)
    for t in data.get("tiers", []):
        if t.get("rule"):
            console.print(f"{t['tier']}: {t['rule']}", markup=False, highlight=False)
    console.print(
        f"silhouette {_fmt(data.get('silhouette'), '.3f')} · stability (ARI, bootstrap) "
        f"{_fmt(data.get('stability_ari'), '.3f')} · ARI vs last run "
        f"{_fmt(data.get('stability_ari_vs_last_run'), '.3f')}"
        f" · changed since last run {data.get('changed_since_last', 0):,}"
    )
    rel = data.get("relevance")
    if rel:
        mine, base = rel["method"], rel["quantiles"]
        console.print(
            f"relevance (tiers from before the last {rel['holdout_days']:g} days against the spend in them): "
            f"{mine['name']} eta² {_fmt(mine['eta_squared'], '.3f')}, Spearman {_fmt(mine['spearman'], '.3f')}, "
            f"VIP+important hold {_fmt(mine['top_tiers_later_revenue_share'], '.1%')} of later revenue; quantiles "
            f"eta² {_fmt(base['eta_squared'], '.3f')}, Spearman {_fmt(base['spearman'], '.3f')}, "
            f"{_fmt(base['top_tiers_later_revenue_share'], '.1%')}"
        )
    if data.get("note"):
        console.print(f"note: {data['note']}")


def seed_data(
    customers: int = typer.Option(1000, "--customers", help="How many customers"),
    purchases: int = typer.Option(10_000, "--purchases", help="How many purchases (about 3 % are refunds)"),
    seed: int = typer.Option(0, help="Random seed; customers get external ids seed<N>-<i>"),
) -> None:
    """Make realistic synthetic customers and purchases (heavy-tailed spend, seasonality) for demos."""
    from bot.cli.seed import seed_database

    try:
        with_database(lambda sessions: seed_database(sessions, customers, purchases, seed=seed, progress=console.log))
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"seeded {customers:,} customers and {purchases:,} purchases; now run `tierdesk tiers compute`")
