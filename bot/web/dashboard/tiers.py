"""The tiers page: the last run's evaluation (size, revenue, the rule, routing and SLA per tier, relevance against
quantile tiers, stability), who moved since the run before (the migration matrix), the trend of tier sizes, and
the valuable customers at risk with their key-account manager. Everything is read from the stored runs, as
`tierdesk tiers report` and `/atrisk` read it."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.routing import tier_history
from bot.routing.tiering import TIERS
from bot.web import charts
from bot.web.auth import Viewer
from bot.web.dashboard.common import render, supervisor
from bot.web.sessions import read_session
from crm_store.repositories import tiering as tier_repo

router = APIRouter(include_in_schema=False)
TREND_RUNS = 12


@router.get("/tiers")
async def tiers_page(
    request: Request, viewer: Viewer = Depends(supervisor), session: AsyncSession = Depends(read_session)
) -> Response:
    run = await tier_repo.last_run(session)
    report = (run.report or {}) if run is not None else {}
    rows = report.get("tiers", [])
    migration = await tier_history.migration(session)
    trend = await tier_history.size_trend(session, TREND_RUNS)
    at_risk = await tier_history.at_risk(session, datetime.now(UTC), limit=50)
    labels = [f"run {t['run_id']}" for t in trend]
    series = {tier: {label: t["sizes"][tier] for label, t in zip(labels, trend, strict=True)} for tier in TIERS}
    return render(
        request,
        "tiers.html",
        viewer,
        run=run,
        report=report,
        rows=rows,
        routing=report.get("actionability") or {},
        relevance=report.get("relevance"),
        model=report.get("clv") or {},
        migration=migration,
        matrix_rows=[*TIERS, tier_history.NEW],
        at_risk=at_risk,
        chart_revenue=charts.share_bar([(r["tier"], r["revenue"]) for r in rows], label="Revenue share by tier"),
        chart_sizes=charts.share_bar([(r["tier"], r["customers"]) for r in rows], label="Customers by tier"),
        chart_trend=charts.stacked_bars(labels, series, label="Customers per tier by run"),
    )
