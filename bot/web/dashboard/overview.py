"""The supervisor's overview: volume by channel and tier, backlog, and the ticket figures (response times, SLA
breaches, CSAT, bot-resolved conversations) by tier and channel, read from `figures` like /report and the API."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import charts
from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, date_range, render
from bot.web.sessions import read_session
from crm_store.repositories import contact_days, reports
from crm_store.repositories.figures import backlog_by_queue, figures

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


async def refresh_rollups(request: Request) -> None:
    """Count the days touched since the last look (usually just today) so the charts are up to the minute."""
    ctx = request.app.state.ctx
    try:
        async with (getattr(ctx, "writer_sessions", None) or ctx.sessions)() as session, session.begin():
            await contact_days.refresh_contact_days(session)
    except SQLAlchemyError:
        log.warning("contacts-per-day rollup not refreshed; the charts may lag", exc_info=True)


def _series(rows: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    series: dict[str, dict[str, int]] = {}
    for day, key, n in rows:
        series.setdefault(key, {})[day] = n
    return series


@router.get("/")
async def overview(
    request: Request, viewer: Viewer = Depends(current_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    if not viewer.is_supervisor:
        return RedirectResponse("/tickets", status_code=303)
    first, last, since, until = date_range(request.query_params.get("from"), request.query_params.get("to"))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    await refresh_rollups(request)
    by_channel = _series(await reports.contacts_per_day(session, since, until, by="channel"))
    by_tier = _series(await reports.contacts_per_day(session, since, until, by="tier"))
    backlog = await backlog_by_queue(session)  # the ticket writer's counters, not a count of the tickets
    queues: dict[str, int] = {}
    for queue, _status, n in backlog:
        queues[queue] = queues.get(queue, 0) + n
    numbers = await figures(session, since, until)
    kpis = {"contacts": sum(sum(v.values()) for v in by_channel.values()), "backlog": sum(queues.values())}
    return render(
        request, "overview.html", viewer, first=first, last=last, kpis=kpis, figures=numbers, backlog=backlog,
        chart_channel=charts.stacked_bars(days, by_channel, label="Contacts per day by channel"),
        chart_tier=charts.stacked_bars(days, by_tier, label="Contacts per day by tier"),
        chart_backlog=charts.hbars(sorted(queues.items(), key=lambda kv: -kv[1]), label="Backlog by queue"),
    )
