"""The inbox page: the queues the agent may see with their waiting and pending counts, "my tickets", and the
tickets of the chosen view. Counts follow the core's visibility rule, group by group."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets import ACTIVE, Actor, may_see_ticket
from bot.web import ticket_actions as actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, render
from bot.web.sessions import read_session
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.agents import list_agents

router = APIRouter(include_in_schema=False)
PAGE = 50


@dataclass
class Counts:
    """Active tickets the viewer may see: by queue and status, and their own."""

    queues: dict[str, dict[str, int]]
    mine: int
    unassigned: int


async def inbox_counts(session: AsyncSession, actor: Actor) -> Counts:
    """One grouped read of the active tickets; each group is kept when the core lets `actor` see it."""
    rows = await tickets_repo.active_groups(session)
    queues: dict[str, dict[str, int]] = {}
    mine = unassigned = 0
    for queue, tier, assignee, status, n in rows:
        if not may_see_ticket(actor, SimpleNamespace(queue=queue, tier_at_open=tier, assignee_id=assignee)):
            continue
        by_status = queues.setdefault(queue or "general", dict.fromkeys(ACTIVE, 0))
        by_status[status] += n
        mine += n if assignee is not None and assignee == actor.agent_id else 0
        unassigned += n if assignee is None else 0
    return Counts(dict(sorted(queues.items())), mine, unassigned)


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
