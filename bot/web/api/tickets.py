"""Tickets: list, read, create, update, assign, close (each change is audited and sent to webhooks)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import ticket_actions
from bot.web.api.deps import RESPONSES, cursor_id, invalid
from bot.web.api.schemas import (
    MAX_ID,
    AssignIn,
    CloseIn,
    NoteOut,
    Page,
    TicketIn,
    TicketOut,
    TicketPatch,
    encode_cursor,
)
from bot.web.sessions import read_session, write_session
from crm_store.errors import NotFound
from crm_store.models import Agent, Ticket, now
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import web as web_repo

router = APIRouter(responses=RESPONSES, tags=["tickets"])
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


async def _ticket(s: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await s.get(Ticket, ticket_id)
    if ticket is None:
        raise HTTPException(404, f"ticket {ticket_id} not found")
    return ticket


@router.get("/tickets", response_model=Page[TicketOut])
async def list_tickets(
    status: Literal["open", "pending", "solved", "closed"] | None = None, customer_id: OptId = None,
    assignee_id: OptId = None, queue: Annotated[str | None, Query(max_length=64)] = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, s: AsyncSession = Depends(read_session),
) -> Page[TicketOut]:
    rows = await web_repo.list_tickets(
        s, status=status, customer_id=customer_id, assignee_id=assignee_id,
        queue=queue.replace("\x00", "") if queue else None, after_id=cursor_id(cursor), limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[TicketOut](items=[TicketOut.model_validate(t) for t in rows],
                           next_cursor=encode_cursor(rows[-1].id) if more else None)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: TicketId, s: AsyncSession = Depends(read_session)) -> TicketOut:
    return TicketOut.model_validate(await _ticket(s, ticket_id))


@router.post("/tickets", response_model=TicketOut, status_code=201)
async def create_ticket(body: TicketIn, request: Request, s: AsyncSession = Depends(write_session)) -> TicketOut:
    """Open a ticket for a customer (e.g. from a phone call); replies go out on `channel`."""
    settings = request.app.state.ctx.settings
    async with s.begin():
        try:
            customer = await customers_repo.get_customer(s, body.customer_id)
        except NotFound:
            raise HTTPException(404, f"customer {body.customer_id} not found") from None
        if body.assignee_id is not None and await s.get(Agent, body.assignee_id) is None:
            raise invalid("assignee_id", f"agent {body.assignee_id} does not exist")
        channel = body.channel
        if channel is None:
            identities = await customers_repo.identities_of(s, customer.id)
            channel = identities[0].channel if identities else "api"
        ticket = Ticket(customer_id=customer.id, channel=channel, subject=body.subject, queue=body.queue,
                        priority=body.priority, tier_at_open=customer.tier, assignee_id=body.assignee_id,
                        status="open", created_at=now(), updated_at=now())
        s.add(ticket)
        await s.flush()
        await ticket_actions.created(s, settings, ticket, actor="api")
        if body.assignee_id is not None:
            await ticket_actions.emit(s, settings, "ticket.assigned", ticket)
    return TicketOut.model_validate(ticket)


@router.patch("/tickets/{ticket_id}", response_model=TicketOut)
async def update_ticket(ticket_id: TicketId, body: TicketPatch, s: AsyncSession = Depends(write_session)) -> TicketOut:
    """Change subject, queue, priority or status (close with POST .../close)."""
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    async with s.begin():
        ticket = await _ticket(s, ticket_id)
        if ticket.status == "closed" and fields:
            raise HTTPException(409, f"ticket {ticket_id} is closed")
        for key, value in fields.items():
            setattr(ticket, key, value)
        if fields.get("status") == "solved" and ticket.solved_at is None:
            ticket.solved_at = now()
        ticket.updated_at = now()
        if fields:
            web_repo.record_event(s, ticket.id, "updated", actor="api", **fields)
    return TicketOut.model_validate(ticket)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
async def assign_ticket(
    ticket_id: TicketId, body: AssignIn, request: Request, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Assign to an agent (or unassign with null)."""
    async with s.begin():
        ticket = await _ticket(s, ticket_id)
        if body.agent_id is not None and await s.get(Agent, body.agent_id) is None:
            raise invalid("agent_id", f"agent {body.agent_id} does not exist")
        if ticket.assignee_id != body.agent_id:
            await ticket_actions.assign(s, request.app.state.ctx.settings, ticket, body.agent_id, actor="api")
    return TicketOut.model_validate(ticket)


@router.post("/tickets/{ticket_id}/close", response_model=TicketOut)
async def close_ticket(
    ticket_id: TicketId, body: CloseIn, request: Request, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    async with s.begin():
        ticket = await _ticket(s, ticket_id)
        if ticket.status != "closed":
            await ticket_actions.close(s, request.app.state.ctx.settings, ticket, body.resolution, actor="api")
    return TicketOut.model_validate(ticket)


@router.get("/tickets/{ticket_id}/notes", response_model=list[NoteOut])
async def ticket_notes(ticket_id: TicketId, s: AsyncSession = Depends(read_session)) -> list[NoteOut]:
    ticket = await _ticket(s, ticket_id)
    return [NoteOut.model_validate(n) for n in await web_repo.notes_for(s, ticket_id=ticket.id)]
