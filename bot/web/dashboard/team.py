"""Supervisor pages about people and segments: agents (load, status, handled, replies and their tickets'
figures, from `figures` like the overview, /report and the API) and tiers (sizes, revenue share, the last tiering
run's quality)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import charts
from bot.web.auth import Viewer
from bot.web.dashboard.common import date_range, render, supervisor
from bot.web.sessions import read_session
from crm_store.models import TIERS
from crm_store.repositories import reports
from crm_store.repositories.figures import figures

router = APIRouter(include_in_schema=False)


@router.get("/agents")
async def agents_page(
    request: Request, viewer: Viewer = Depends(supervisor), session: AsyncSession = Depends(read_session)
) -> Response:
    first, last, since, until = date_range(request.query_params.get("from"), request.query_params.get("to"))
    rows = (await figures(session, since, until)).agents
    return render(request, "agents.html", viewer, rows=rows, first=first, last=last,
                  chart=charts.hbars([(r.name, r.load) for r in rows if r.load], label="Open tickets per agent"))


@router.get("/tiers")
async def tiers_page(
    request: Request, viewer: Viewer = Depends(supervisor), session: AsyncSession = Depends(read_session)
) -> Response:
    rows = await reports.tier_figures(session)
    rows.sort(key=lambda r: TIERS.index(r["tier"]) if r["tier"] in TIERS else 99)
    total_customers = sum(r["customers"] for r in rows) or 1
    total_revenue = sum(r["revenue"] for r in rows) or 0
    run = await reports.last_tier_run(session)
    return render(
        request, "tiers.html", viewer, rows=rows, total_customers=total_customers, total_revenue=total_revenue,
        run=run,
        chart_revenue=charts.share_bar([(r["tier"], r["revenue"]) for r in rows], label="Revenue share by tier"),
        chart_sizes=charts.share_bar([(r["tier"], r["customers"]) for r in rows], label="Customers by tier"),
    )
