"""Tickets: the queue view and one ticket with its transcript, audit trail and notes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.messages import clean_text
from bot.web import ticket_actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import check_csrf, current_viewer, int_or_none, render
from bot.web.dashboard.customers import visible_customer
from bot.web.sessions import read_session, write_session
from crm_store.errors import NotFound
from crm_store.models import TICKET_STATUSES, Customer
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import web as web_repo
from crm_store.repositories.agents import list_agents

router = APIRouter(include_in_schema=False)


@router.get("/tickets")
async def ticket_list(
    request: Request, viewer: Viewer = Depends(current_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    params = request.query_params
    status = params.get("status", "open")
    status = status if status in (*TICKET_STATUSES, "all") else "open"
    mine = params.get("mine") == "1"
    before = int_or_none(params.get("before"))
    tickets = await web_repo.list_tickets(
        session, status=None if status == "all" else status, queue=params.get("queue", "")[:64] or None,
        assignee_id=viewer.agent_id if mine else int_or_none(params.get("agent")),
        tiers=viewer.scope_tiers or None, before_id=before or 2**62, limit=51,
    )
    more = len(tickets) > 50
    tickets = tickets[:50]
    customers = {c.id: c for c in [await session.get(Customer, cid) for cid in {t.customer_id for t in tickets}] if c}
    agents = await list_agents(session)
    return render(request, "tickets.html", viewer, tickets=tickets, customers=customers,
                  agent_names={a.id: a.name for a in agents}, status=status, mine=mine, statuses=TICKET_STATUSES,
                  queue=params.get("queue", ""), next_before=tickets[-1].id if more else None)


async def visible_ticket(session: AsyncSession, viewer: Viewer, ticket_id: int):
    ticket = await tickets_repo.get_ticket(session, ticket_id)
    customer = await visible_customer(session, viewer, ticket.customer_id)
    if customer is None:
        raise NotFound(f"ticket T-{ticket_id} not found")
    return ticket, customer


@router.get("/tickets/{ticket_id:int}")
async def ticket_page(
    ticket_id: int, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(read_session),
) -> Response:
    ticket, customer = await visible_ticket(session, viewer, ticket_id)
    agents = await list_agents(session)
    return render(
        request, "ticket.html", viewer, ticket=ticket, customer=customer,
        messages=await contacts_repo.ticket_transcript(session, ticket.id, limit=1000),
        events=await tickets_repo.ticket_events(session, ticket.id),
        notes=await web_repo.notes_for(session, ticket_id=ticket.id),
        agents=agents, agent_names={a.id: a.name for a in agents},
    )


@router.post("/tickets/{ticket_id:int}/notes")
async def add_ticket_note(
    ticket_id: int, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    form = await check_csrf(request, viewer)
    text, _ = clean_text(str(form.get("text", "")), 10_000)
    async with session.begin():
        ticket, customer = await visible_ticket(session, viewer, ticket_id)
        if text.strip():
            await tickets_repo.add_note(session, customer_id=customer.id, ticket_id=ticket.id, text=text.strip(),
                                        agent_id=viewer.agent_id)
    return RedirectResponse(f"/tickets/{ticket_id}#notes", status_code=303)


@router.post("/tickets/{ticket_id:int}/close")
async def close_ticket(
    ticket_id: int, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    form = await check_csrf(request, viewer)
    resolution, _ = clean_text(str(form.get("resolution", "")), 2000)
    settings = request.app.state.ctx.settings
    async with session.begin():
        ticket, _customer = await visible_ticket(session, viewer, ticket_id)
        if ticket.status != "closed":
            await ticket_actions.close(session, settings, ticket, resolution.strip(), actor="agent")
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)


@router.post("/tickets/{ticket_id:int}/assign")
async def assign_ticket(
    ticket_id: int, request: Request, viewer: Viewer = Depends(current_viewer),
    session: AsyncSession = Depends(write_session),
) -> Response:
    form = await check_csrf(request, viewer)
    agent_id = int_or_none(str(form.get("agent_id", "")))
    if not viewer.is_supervisor and agent_id not in (None, viewer.agent_id):
        agent_id = viewer.agent_id
    settings = request.app.state.ctx.settings
    async with session.begin():
        ticket, _customer = await visible_ticket(session, viewer, ticket_id)
        if agent_id is not None and not await web_repo.agent_exists(session, agent_id):
            raise NotFound(f"agent {agent_id} not found")
        if ticket.assignee_id != agent_id:
            await ticket_actions.assign(session, settings, ticket, agent_id, actor="agent")
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)
