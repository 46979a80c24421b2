"""Supervisor pages about people: agents (load, status, handled, replies and their tickets' figures, from
`figures` like the overview, /report and the API). The tiers page is `bot.web.dashboard.tiers`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets.access import is_admin
from bot.web import charts
from bot.web.auth import Viewer
from bot.web.dashboard.common import Forbidden, check_csrf, date_range, int_or_none, render, supervisor
from bot.web.sessions import read_session, write_session
from bot.web.web_sessions import revoke_agent_sessions
from crm_store.repositories.figures import figures

router = APIRouter(include_in_schema=False)


@router.get("/agents")
async def agents_page(
    request: Request, viewer: Viewer = Depends(supervisor), session: AsyncSession = Depends(read_session)
) -> Response:
    first, last, since, until = date_range(request.query_params.get("from"), request.query_params.get("to"))
    rows = (await figures(session, since, until, durations=("agent",))).agents
    ended_arg = request.query_params.get("ended", "")
    ended = int(ended_arg) if ended_arg.isdigit() and len(ended_arg) < 7 else None
    return render(request, "agents.html", viewer, rows=rows, first=first, last=last, is_admin=is_admin(viewer.role),
                  ended=ended, chart=charts.hbars([(r.name, r.load) for r in rows if r.load],
                                                  label="Open tickets per agent"))


@router.post("/agents/{agent_ref}/sessions/revoke")
async def revoke_sessions(
    request: Request, agent_ref: str, viewer: Viewer = Depends(supervisor),
    session: AsyncSession = Depends(write_session),
) -> Response:
    """An admin ends every dashboard session of an agent (a lost laptop, someone leaving), audited."""
    await check_csrf(request, viewer)
    if not is_admin(viewer.role):
        raise Forbidden("Ending someone's sessions is for admins.")
    agent_id = int_or_none(agent_ref)
    if agent_id is None:
        raise Forbidden("No such agent.")
    async with session.begin():
        count = await revoke_agent_sessions(session, agent_id, reason="revoked by an admin", by=viewer.agent_id)
    return RedirectResponse(f"/agents?ended={count}", status_code=303)
