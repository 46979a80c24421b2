"""Queries of the web app: API tokens, dashboard logins, the web chat's history, and the REST API's writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.errors import Conflict, NotFound
from crm_store.models import Agent, ApiToken, Contact, Customer, Identity, Note, Ticket, TicketEvent, now


# --- API tokens -------------------------------------------------------------------------------------------------
async def add_api_token(session: AsyncSession, *, name: str, token_hash: str, agent_id: int | None = None) -> int:
    token = ApiToken(name=name, token_hash=token_hash, agent_id=agent_id)
    session.add(token)
    await session.flush()
    return token.id


async def api_token_agent(session: AsyncSession, token_hash: str) -> tuple[bool, Agent | None]:
    """Whether the token is active, and the agent it acts as (None: a token of its own, with full rights)."""
    row = (await session.execute(
        select(ApiToken.id, Agent).outerjoin(Agent, Agent.id == ApiToken.agent_id)
        .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
    )).first()
    return (row is not None, row[1] if row is not None else None)


async def revoke_api_token(session: AsyncSession, name: str) -> int:
    result = await session.execute(
        update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)).values(revoked_at=now())
    )
    return result.rowcount or 0


# --- dashboard logins -------------------------------------------------------------------------------------------
async def agent_by_email(session: AsyncSession, email: str) -> Agent | None:
    return await session.scalar(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))


async def set_password_hash(session: AsyncSession, agent_id: int, password_hash: str) -> None:
    await session.execute(update(Agent).where(Agent.id == agent_id).values(password_hash=password_hash))


# --- web chat history -------------------------------------------------------------------------------------------
async def webchat_history(
    session: AsyncSession, address: str, *, after_external_id: str = "", limit: int = 100
) -> list[Contact]:
    """A visitor's conversation, oldest first: everything after the message they saw last (customer contacts
    only: a desk notice is not part of it).

    If that message is unknown (never seen, or not logged yet), the latest `limit` messages are returned and the
    widget drops the ones it already shows (by id).
    """
    base = select(Contact).where(Contact.channel == "webchat", Contact.address == address, Contact.desk == false())
    if after_external_id:
        anchor = await session.scalar(
            select(Contact).where(Contact.channel == "webchat", Contact.external_id == after_external_id).limit(1)
        )
        if anchor is not None and anchor.address == address:
            rows = await session.scalars(
                base.where(tuple_(Contact.created_at, Contact.id) > tuple_(anchor.created_at, anchor.id))
                .order_by(Contact.created_at, Contact.id)
                .limit(limit)
            )
            return list(rows)
    rows = await session.scalars(base.order_by(Contact.created_at.desc(), Contact.id.desc()).limit(limit))
    return list(reversed(list(rows)))


# --- REST API ---------------------------------------------------------------------------------------------------
def _after(cursor_id: int | None, column: Any) -> Any:
    return column > cursor_id if cursor_id else column.is_not(None)


async def list_customers(
    session: AsyncSession, *, q: str = "", tier: str | None = None, after_id: int | None = None, limit: int = 50,
    tiers: Sequence[str] | None = None,
) -> list[Customer]:
    stmt = select(Customer).where(Customer.merged_into_id.is_(None), _after(after_id, Customer.id))
    if tier:
        stmt = stmt.where(Customer.tier == tier)
    if tiers:  # the tier that counts: one set by hand, else the computed one
        stmt = stmt.where(func.coalesce(Customer.manual_tier, Customer.tier).in_(list(tiers)))
    if q:
        like = f"%{_escape_like(q)}%"
        by_identity = select(Identity.customer_id).where(Identity.address.ilike(like, escape="\\"))
        stmt = stmt.where(
            or_(Customer.name.ilike(like, escape="\\"), Customer.external_ref == q, Customer.id.in_(by_identity))
        )
    return list(await session.scalars(stmt.order_by(Customer.id).limit(limit)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def create_customer(session: AsyncSession, **fields: Any) -> Customer:
    ref = fields.get("external_ref")
    if ref is not None and await session.scalar(select(Customer.id).where(Customer.external_ref == ref)):
        raise Conflict(f"a customer with external ref {ref!r} exists")
    customer = Customer(**fields)
    session.add(customer)
    await session.flush()
    return customer


async def update_customer(session: AsyncSession, customer: Customer, **fields: Any) -> Customer:
    ref = fields.get("external_ref")
    if ref is not None and await session.scalar(
        select(Customer.id).where(Customer.external_ref == ref, Customer.id != customer.id)
    ):
        raise Conflict(f"a customer with external ref {ref!r} exists")
    for key, value in fields.items():
        setattr(customer, key, value)
    customer.updated_at = now()
    await session.flush()
    return customer


async def add_identity(
    session: AsyncSession, customer_id: int, channel: str, address: str, display_name: str
) -> Identity:
    owner = await session.scalar(select(Identity).where(Identity.channel == channel, Identity.address == address))
    if owner is not None:
        if owner.customer_id == customer_id:
            return owner
        raise Conflict(f"{channel}:{address} belongs to customer {owner.customer_id}")
    identity = Identity(customer_id=customer_id, channel=channel, address=address, display_name=display_name)
    session.add(identity)
    await session.flush()
    return identity


async def list_contacts(
    session: AsyncSession, *, customer_id: int | None = None, ticket_id: int | None = None, channel: str | None = None,
    direction: str | None = None, since: datetime | None = None, after_id: int | None = None, limit: int = 50,
    include_desk: bool = False, tiers: Sequence[str] = (),
) -> list[Contact]:
    """Contacts in id order after a cursor: stable pages while new contacts arrive. Customer contacts only,
    unless `include_desk` adds desk traffic; `tiers` limits them to customers of those tiers (a scope)."""
    stmt = select(Contact).where(_after(after_id, Contact.id))
    if tiers:
        stmt = stmt.join(Customer, Customer.id == Contact.customer_id).where(Customer.tier.in_(list(tiers)))
    if not include_desk:
        stmt = stmt.where(Contact.desk == false())
    if customer_id is not None:
        stmt = stmt.where(Contact.customer_id == customer_id)
    if ticket_id is not None:
        stmt = stmt.where(Contact.ticket_id == ticket_id)
    if channel:
        stmt = stmt.where(Contact.channel == channel)
    if direction:
        stmt = stmt.where(Contact.direction == direction)
    if since is not None:
        stmt = stmt.where(Contact.created_at >= since)
    return list(await session.scalars(stmt.order_by(Contact.id).limit(limit)))


@dataclass(slots=True)
class TicketPeople:
    """Who a page of tickets names: each ticket's customer and its assignee's name, read by `list_tickets` in the
    tickets' own statement (a queue page is then one round trip, not three)."""

    customers: dict[int, Customer] = field(default_factory=dict)
    agent_names: dict[int, str] = field(default_factory=dict)


async def list_tickets(
    session: AsyncSession, *, status: str | None = None, customer_id: int | None = None,
    assignee_id: int | None = None, queue: str | None = None, tiers: Sequence[str] | None = None,
    after_id: int | None = None, before_id: int | None = None, limit: int = 50, people: TicketPeople | None = None,
) -> list[Ticket]:
    """Tickets in id order after `after_id` (or newest first before `before_id`); with `people`, their customers
    and assignees' names go there, joined by primary key in the same statement."""
    stmt = select(Ticket)
    if status:
        stmt = stmt.where(Ticket.status == status)
    if customer_id is not None:
        stmt = stmt.where(Ticket.customer_id == customer_id)
    if assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    if queue:
        stmt = stmt.where(Ticket.queue == queue)
    if tiers:
        stmt = stmt.join(Customer, Customer.id == Ticket.customer_id).where(Customer.tier.in_(list(tiers)))
    if before_id:
        stmt = stmt.where(Ticket.id < before_id).order_by(Ticket.id.desc())
    else:
        stmt = stmt.where(_after(after_id, Ticket.id)).order_by(Ticket.id)
    if people is None:
        return list(await session.scalars(stmt.limit(limit)))
    if not tiers:  # the tier filter has joined the customers already
        stmt = stmt.outerjoin(Customer, Customer.id == Ticket.customer_id)
    stmt = stmt.outerjoin(Agent, Agent.id == Ticket.assignee_id).add_columns(Customer, Agent.name)
    tickets = []
    for ticket, customer, assignee in (await session.execute(stmt.limit(limit))).tuples():
        tickets.append(ticket)
        if customer is not None:
            people.customers[customer.id] = customer
        if ticket.assignee_id is not None and assignee is not None:
            people.agent_names[ticket.assignee_id] = assignee
    return tickets


async def agent_exists(session: AsyncSession, agent_id: int) -> bool:
    return await session.scalar(select(Agent.id).where(Agent.id == agent_id)) is not None


def record_event(session: AsyncSession, ticket_id: int, kind: str, *, actor: str = "api", **data: Any) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, kind=kind, actor=actor, data=data))


async def notes_for(
    session: AsyncSession, *, customer_id: int | None = None, ticket_id: int | None = None, limit: int = 100
) -> list[Note]:
    stmt = select(Note)
    if customer_id is not None:
        stmt = stmt.where(Note.customer_id == customer_id)
    if ticket_id is not None:
        stmt = stmt.where(Note.ticket_id == ticket_id)
    return list(await session.scalars(stmt.order_by(Note.created_at.desc(), Note.id.desc()).limit(limit)))


async def get_or_404(session: AsyncSession, model: type, key: int) -> Any:
    row = await session.get(model, key)
    if row is None:
        raise NotFound(f"{model.__name__.lower()} {key} not found")
    return row
