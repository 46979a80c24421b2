"""Customers, their identities, contacts and notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bot.routing import tier_history
from bot.tickets import Actor
from bot.tickets.access import may_see_tier
from bot.web import ticket_actions as actions
from bot.web.api.deps import RESPONSES, Caller, cursor_id, invalid, ticket_errors
from bot.web.api.schemas import (
    MAX_ID,
    ContactOut,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    IdentityIn,
    IdentityOut,
    NoteIn,
    NoteOut,
    Page,
    Tier,
    ValueOutlookOut,
    encode_cursor,
)
from bot.web.exports import export_response
from bot.web.sessions import read_session, write_session
from channels.base import known_channels
from crm_store.errors import Conflict, NotFound
from crm_store.models import TIERS, Agent, Contact, Customer, Ticket
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import web as web_repo
from crm_store.repositories.contact_search import ContactFilter

router = APIRouter(responses=RESPONSES, dependencies=[Depends(ticket_errors)])
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200)]


async def _customer(s: AsyncSession, customer_id: int, actor: Actor | None = None) -> Customer:
    """The customer, if the caller may see their tier (a token acting as an agent sees the tiers they serve);
    the same 404 either way."""
    try:
        customer = await customers_repo.get_customer(s, customer_id)
    except NotFound:
        customer = None
    if customer is None or (actor is not None and not may_see_tier(actor, customer.manual_tier or customer.tier)):
        raise HTTPException(404, f"customer {customer_id} not found")
    return customer


async def _check_agent(s: AsyncSession, agent_id: int | None) -> None:
    if agent_id is not None and await s.get(Agent, agent_id) is None:
        raise invalid("key_account_manager_id", f"agent {agent_id} does not exist")


@router.get("/customers", response_model=Page[CustomerOut], tags=["customers"])
async def list_customers(
    q: Annotated[str, Query(max_length=200)] = "", tier: Tier | None = None, cursor: str | None = None,
    limit: Limit = 50, s: AsyncSession = Depends(read_session), *, actor: Caller,
) -> Page[CustomerOut]:
    """Customers in id order; `q` matches name, external reference or any identity address."""
    rows = await web_repo.list_customers(s, q=q.replace("\x00", ""), tier=tier, after_id=cursor_id(cursor),
                                         limit=limit + 1, tiers=scope_of(actor))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[CustomerOut](items=[CustomerOut.model_validate(r) for r in rows],
                             next_cursor=encode_cursor(rows[-1].id) if more else None)


@router.post("/customers", response_model=CustomerOut, status_code=201, tags=["customers"],
             responses={409: {"description": "External reference taken"}, 422: {"description": "Invalid"}})
async def create_customer(body: CustomerIn, s: AsyncSession = Depends(write_session)) -> CustomerOut:
    fields = body.model_dump()
    if body.manual_tier:
        fields.update(tier=body.manual_tier, tier_reason="tier set by hand (API)")
    async with s.begin():
        await _check_agent(s, body.key_account_manager_id)
        try:
            customer = await web_repo.create_customer(s, **fields)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
    return CustomerOut.model_validate(customer)


@router.get("/customers/{customer_id}", response_model=CustomerOut, tags=["customers"])
async def get_customer(
    customer_id: CustomerId, actor: Caller, s: AsyncSession = Depends(read_session)
) -> CustomerOut:
    """A customer; a merged customer answers with the one it was merged into."""
    return CustomerOut.model_validate(await _customer(s, customer_id, actor))


@router.get("/customers/{customer_id}/outlook", response_model=ValueOutlookOut, tags=["customers"])
async def customer_outlook(
    customer_id: CustomerId, actor: Caller, s: AsyncSession = Depends(read_session)
) -> ValueOutlookOut:
    """Predicted 12-month value and probability alive from the newest tier run, with a one-line reason."""
    customer = await _customer(s, customer_id, actor)
    found = await tier_history.customer_outlook(s, customer.id, datetime.now(UTC))
    return ValueOutlookOut(customer_id=customer.id, predicted_value_12m=found.predicted_value,
                           p_alive=found.p_alive, reason=found.reason)


@router.patch("/customers/{customer_id}", response_model=CustomerOut, tags=["customers"],
              responses={409: {"description": "External reference taken"}})
async def update_customer(
    customer_id: CustomerId, body: CustomerPatch, s: AsyncSession = Depends(write_session)
) -> CustomerOut:
    nullable = ("external_ref", "language", "manual_tier", "key_account_manager_id")
    fields = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k in nullable}
    if fields.get("manual_tier"):
        fields.update(tier=fields["manual_tier"], tier_reason="tier set by hand (API)")
    async with s.begin():
        customer = await _customer(s, customer_id)
        await _check_agent(s, fields.get("key_account_manager_id"))
        try:
            customer = await web_repo.update_customer(s, customer, **fields)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
    return CustomerOut.model_validate(customer)


@router.get("/customers/{customer_id}/identities", response_model=list[IdentityOut], tags=["identities"])
async def list_identities(
    customer_id: CustomerId, actor: Caller, s: AsyncSession = Depends(read_session)
) -> list[IdentityOut]:
    customer = await _customer(s, customer_id, actor)
    return [IdentityOut.model_validate(i) for i in await customers_repo.identities_of(s, customer.id)]


@router.post("/customers/{customer_id}/identities", response_model=IdentityOut, status_code=201, tags=["identities"],
             responses={409: {"description": "Identity belongs to another customer"}})
async def add_identity(
    customer_id: CustomerId, body: IdentityIn, s: AsyncSession = Depends(write_session)
) -> IdentityOut:
    """Attach a (channel, address) so messages from it are recognised as this customer."""
    address = body.address.strip().lower() if body.channel == "email" else body.address.strip()
    if not address:
        raise invalid("address", "address is empty")
    async with s.begin():
        customer = await _customer(s, customer_id)
        try:
            identity = await web_repo.add_identity(s, customer.id, body.channel, address, body.display_name)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
    return IdentityOut.model_validate(identity)


ChannelFilter = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_-]+$")]


def scope_of(actor: Actor) -> tuple[str, ...]:
    """The tiers an API caller's contact reads are limited to (empty: all), from the core's `may_see_tier`."""
    seen = tuple(t for t in TIERS if may_see_tier(actor, t))
    return () if seen == TIERS else seen or ("",)


async def _check_channel(request: Request, s: AsyncSession, channel: str | None) -> None:
    """A channel filter names a channel the system knows, runs, or has logged; anything else is a 422."""
    if not channel or channel in known_channels():
        return
    running = getattr(getattr(request.app.state.ctx, "registry", None), "names", list)()
    if channel in running or await contacts_repo.channel_logged(s, channel):
        return
    raise HTTPException(422, [{"loc": ["query", "channel"], "type": "value_error",
                               "msg": f"{channel!r} is not a channel (known: {', '.join(known_channels())})"}])


def _check_since(since: datetime | None) -> None:
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, [{"loc": ["query", "since"], "msg": "since needs a timezone", "type": "value_error"}])


@router.get("/contacts", response_model=Page[ContactOut], tags=["contacts"])
async def list_contacts(
    request: Request, actor: Caller,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ticket_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    channel: ChannelFilter = None,
    direction: Literal["in", "out"] | None = None,
    since: datetime | None = None,
    include_desk: Annotated[bool, Query(description="also desk traffic: agent commands, notices to agents")] = False,
    cursor: str | None = None, limit: Limit = 50, s: AsyncSession = Depends(read_session),
) -> Page[ContactOut]:
    """The customer contacts in id order (stable while new contacts arrive); follow `next_cursor` for more.
    `include_desk` adds desk traffic. A token acting as an agent sees the tiers that agent serves."""
    _check_since(since)
    await _check_channel(request, s, channel)
    rows = await web_repo.list_contacts(
        s, customer_id=customer_id, ticket_id=ticket_id, channel=channel, direction=direction, since=since,
        include_desk=include_desk, after_id=cursor_id(cursor), limit=limit + 1, tiers=scope_of(actor),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[ContactOut](items=[ContactOut.model_validate(r) for r in rows],
                            next_cursor=encode_cursor(rows[-1].id) if more else None)


EXPORT_CONTENT = {"text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}


@router.get("/contacts/export", tags=["contacts"], response_class=StreamingResponse,
            responses={200: {"description": "The contacts, oldest first", "content": EXPORT_CONTENT}})
async def export_contacts(
    request: Request, actor: Caller,
    format: Literal["csv", "jsonl"] = "csv",
    bom: Annotated[bool, Query(description="CSV only: start with a UTF-8 BOM (Excel and non-Latin text)")] = False,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ticket_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    channel: ChannelFilter = None,
    direction: Literal["in", "out"] | None = None,
    since: datetime | None = None,
    include_desk: bool = False,
) -> StreamingResponse:
    """Every matching contact, streamed, oldest first: CSV cells that a spreadsheet would run as a formula start
    with a quote. Limited like the listing (an agent's token: their tiers); every export is audited."""
    _check_since(since)
    async with request.app.state.ctx.sessions() as s:
        await _check_channel(request, s, channel)
    f = ContactFilter(customer_id=customer_id, ticket_id=ticket_id, channel=channel or "", direction=direction or "",
                      since=since, include_desk=include_desk, scope_tiers=scope_of(actor))
    return export_response(request, f, format, bom=bom, agent_id=actor.agent_id, actor=actor.label, via="api")


@router.get("/contacts/{contact_id}", response_model=ContactOut, tags=["contacts"])
async def get_contact(
    contact_id: Annotated[int, Path(ge=1, le=MAX_ID)], actor: Caller, s: AsyncSession = Depends(read_session)
) -> ContactOut:
    """One contact; outside the caller's tiers it does not exist (the same 404 either way)."""
    contact = await s.get(Contact, contact_id)
    scope = scope_of(actor)
    if contact is not None and scope:
        tier = await customers_repo.tier_of(s, contact.customer_id)
        contact = contact if tier in scope else None
    if contact is None:
        raise HTTPException(404, f"contact {contact_id} not found")
    return ContactOut.model_validate(contact)


@router.get("/customers/{customer_id}/notes", response_model=list[NoteOut], tags=["notes"])
async def list_notes(customer_id: CustomerId, actor: Caller, s: AsyncSession = Depends(read_session)) -> list[NoteOut]:
    customer = await _customer(s, customer_id, actor)
    return [NoteOut.model_validate(n) for n in await web_repo.notes_for(s, customer_id=customer.id)]


@router.post("/customers/{customer_id}/notes", response_model=NoteOut, status_code=201, tags=["notes"])
async def add_note(
    customer_id: CustomerId, body: NoteIn, request: Request, actor: Caller, s: AsyncSession = Depends(write_session)
) -> NoteOut:
    """A private note on a customer, or on one of their tickets (then written by the ticket core, like every
    ticket note); never sent to the customer."""
    if body.ticket_id is None:
        async with s.begin():
            customer = await _customer(s, customer_id)
            note = await tickets_repo.add_note(s, customer_id=customer.id, text=body.text)
        return NoteOut.model_validate(note)
    async with s.begin():
        customer = await _customer(s, customer_id)
        ticket = await s.get(Ticket, body.ticket_id)
        if ticket is None or ticket.customer_id != customer.id:
            raise invalid("ticket_id", f"ticket {body.ticket_id} is not this customer's")
    await actions.change_ticket(request, s, actor, body.ticket_id, actions.note(actor, body.text))
    return NoteOut.model_validate((await web_repo.notes_for(s, ticket_id=body.ticket_id, limit=1))[0])
