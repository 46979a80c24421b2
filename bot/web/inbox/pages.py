"""The inbox page: the queues the agent may see with their waiting and pending counts, "my tickets", and the
tickets of the chosen view. Counts follow the core's visibility rule, group by group."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets import ACTIVE, Actor
from bot.web import ticket_actions as actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, render
from bot.web.inbox.counts import Counts, counts_of
from bot.web.sessions import read_session
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.agents import list_agents

router = APIRouter(include_in_schema=False)
PAGE = 50


async def inbox_counts(session: AsyncSession, actor: Actor) -> Counts:
    """One grouped read of the active tickets; each group is kept when the core lets `actor` see it."""
    return counts_of(await tickets_repo.active_groups(session), actor)


@router.get("/inbox")
async def inbox(
    request: Request, viewer: Viewer = Depends(current_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    params = request.query_params
    view = params.get("view", "mine")[:64]
    queue = params.get("queue", "")[:64]
    filters: dict = {"assignee_id": viewer.agent_id} if view == "mine" or not queue else {"queue": queue}
    tickets: list[Ticket] = []
    for status in ACTIVE:
        shown, _ = await actions.visible_tickets(
            session, viewer.actor, limit=PAGE, newest_first=True, status=status, **filters
        )
        tickets.extend(shown)
    tickets.sort(key=lambda t: (t.priority or 9, t.id))
    ids = {t.customer_id for t in tickets}
    customers = await customers_repo.customers_by_id(session, ids)
    agents = await list_agents(session)
    return render(
        request,
        "inbox.html",
        viewer,
        counts=await inbox_counts(session, viewer.actor),
        tickets=tickets,
        customers=customers,
        agent_names={a.id: a.name for a in agents},
        view="queue" if queue and view != "mine" else "mine",
        queue=queue,
    )
