"""Tickets: list, read, create, update, assign, reply, note, close and reopen. Every change is a ticket-core
operation written by its one writer (audit trail, webhooks, the customer's messages, agents' load), and what a
token sees is the core's visibility for the agent it acts as."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets import Actor, TicketError
from bot.web import ticket_actions as actions
from bot.web.api.deps import RESPONSES, Caller, cursor_id, invalid, ticket_errors
from bot.web.api.schemas import (
    MAX_ID,
    AssignIn,
    CloseIn,
    NoteOut,
    Page,
    ReplyIn,
    TicketIn,
    TicketNoteIn,
    TicketOut,
    TicketPatch,
    TicketStatus,
    encode_cursor,
)
from bot.web.sessions import read_session, write_session
from channels.base import known_channels
from crm_store.errors import NotFound
from crm_store.models import Customer
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import web as web_repo

router = APIRouter(responses=RESPONSES, tags=["tickets"], dependencies=[Depends(ticket_errors)])
TicketId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/tickets", response_model=Page[TicketOut])
async def list_tickets(
    actor: Caller, status: TicketStatus | None = None, customer_id: OptId = None,
    assignee_id: OptId = None, queue: Annotated[str | None, Query(max_length=64)] = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, s: AsyncSession = Depends(read_session),
) -> Page[TicketOut]:
    """Tickets in id order that the token may see; follow `next_cursor` for more."""
    rows, more = await actions.visible_tickets(
        s, actor, limit=limit, cursor=cursor_id(cursor), status=status, customer_id=customer_id,
        assignee_id=assignee_id, queue=queue.replace("\x00", "") if queue else None,
    )
    return Page[TicketOut](items=[TicketOut.model_validate(t) for t in rows],
                           next_cursor=encode_cursor(more) if more else None)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
async def get_ticket(ticket_id: TicketId, actor: Caller, s: AsyncSession = Depends(read_session)) -> TicketOut:
    return TicketOut.model_validate(await actions.visible_ticket(s, actor, ticket_id))


async def _reply_channel(request: Request, s: AsyncSession, customer: Customer, wanted: str | None) -> str:
    """Where replies go: a channel the customer can be reached on, or one the system knows by name."""
    reachable = [i.channel for i in await customers_repo.identities_of(s, customer.id)]
    if wanted is None:
        if not reachable:
            raise invalid("channel", f"customer C-{customer.id} has no address yet: name the channel")
        return reachable[0]
    running = getattr(getattr(request.app.state.ctx, "registry", None), "names", list)()
    if wanted not in reachable and wanted not in known_channels() and wanted not in running:
        raise invalid("channel", f"{wanted!r} is not a channel (known: {', '.join(known_channels())})")
    return wanted


@router.post("/tickets", response_model=TicketOut, status_code=201)
async def create_ticket(
    body: TicketIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Open a ticket for a customer (e.g. after a phone call). It is routed like a message from them: their
    stored tier decides queue, priority and SLA times, and routing picks the agent unless `assignee_id` does."""
    async with s.begin():
        try:
            customer = await customers_repo.get_customer(s, body.customer_id)
        except NotFound:
            raise invalid("customer_id", f"customer C-{body.customer_id} does not exist") from None
        channel = await _reply_channel(request, s, customer, body.channel)
        try:
            ticket = await actions.open_ticket(request, s, actor, customer, channel=channel, subject=body.subject,
                                               assignee_id=body.assignee_id)
        except TicketError as exc:
            if exc.code == "invalid" and body.assignee_id is not None:
                raise invalid("assignee_id", exc.message) from None
            raise
    return TicketOut.model_validate(ticket)


def _patch_steps(actor: Actor, body: TicketPatch) -> list[actions.Step]:
    """The core operations a PATCH asks for, in a fixed order."""
    fields = body.model_fields_set
    steps: list[actions.Step] = []
    if body.subject is not None:
        steps.append(actions.subject(actor, body.subject))
    if body.tags is not None:
        steps.append(actions.retag(actor, body.tags))
    if body.priority is not None:
        steps.append(actions.priority(actor, body.priority))
    if body.queue is not None:
        steps.append(actions.transfer(actor, body.queue))
    if body.status == "pending":
        steps.append(actions.pending(actor, body.snoozed_until))
    elif body.status == "open":
        steps.append(actions.reopen(actor))
    elif "snoozed_until" in fields and body.snoozed_until is not None:
        raise TicketError("snoozed_until goes with status pending.", code="invalid")
    return steps


@router.patch("/tickets/{ticket_id}", response_model=TicketOut)
async def update_ticket(
    ticket_id: TicketId, body: TicketPatch, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Change subject, tags, priority, queue or status; all of it or nothing (close with POST .../close)."""
    steps = _patch_steps(actor, body)
    if not steps:
        return TicketOut.model_validate(await actions.visible_ticket(s, actor, ticket_id))
    return await _changed(request, s, actor, ticket_id, *steps)


async def _changed(request: Request, s: AsyncSession, actor: Actor, ticket_id: int, *steps: actions.Step) -> TicketOut:
    """The ticket as it is after the core ran `steps` on it."""
    ticket, _ = await actions.change_ticket(request, s, actor, ticket_id, *steps)
    return TicketOut.model_validate(ticket)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
async def assign_ticket(
    ticket_id: TicketId, body: AssignIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Assign to an agent (or back to the queue with null)."""
    return await _changed(request, s, actor, ticket_id, actions.assign(actor, body.agent_id))


@router.post("/tickets/{ticket_id}/reply", response_model=TicketOut)
async def reply_to_ticket(
    ticket_id: TicketId, body: ReplyIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Answer the customer on the channel they last wrote from (the first reply stops the first-response clock)."""
    return await _changed(request, s, actor, ticket_id, actions.reply(actor, body.text))


@router.post("/tickets/{ticket_id}/close", response_model=TicketOut)
async def close_ticket(
    ticket_id: TicketId, body: CloseIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    """Close: the customer is asked for a rating when a person handled the ticket."""
    return await _changed(request, s, actor, ticket_id, actions.close(actor, body.resolution))


@router.post("/tickets/{ticket_id}/reopen", response_model=TicketOut)
async def reopen_ticket(
    ticket_id: TicketId, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> TicketOut:
    return await _changed(request, s, actor, ticket_id, actions.reopen(actor))


@router.get("/tickets/{ticket_id}/notes", response_model=list[NoteOut])
async def ticket_notes(ticket_id: TicketId, actor: Caller, s: AsyncSession = Depends(read_session)) -> list[NoteOut]:
    ticket = await actions.visible_ticket(s, actor, ticket_id)
    return [NoteOut.model_validate(n) for n in await web_repo.notes_for(s, ticket_id=ticket.id)]


@router.post("/tickets/{ticket_id}/notes", response_model=NoteOut, status_code=201)
async def add_ticket_note(
    ticket_id: TicketId, body: TicketNoteIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> NoteOut:
    """A private note on the ticket; never sent to the customer."""
    ticket, _ = await actions.change_ticket(request, s, actor, ticket_id, actions.note(actor, body.text))
    return NoteOut.model_validate((await web_repo.notes_for(s, ticket_id=ticket.id, limit=1))[0])
