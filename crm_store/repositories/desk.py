"""Queries the agent desk needs beyond the ticket and contact basics: the waiting queue, tickets at SLA risk,
agent status, and forum topics mirroring tickets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Customer, Ticket
from crm_store.repositories._sql import chunks
from crm_store.repositories.text_match import contains_pattern

ACTIVE = ("open", "pending")


async def waiting_tickets(session: AsyncSession, *, limit: int = 500) -> list[Ticket]:
    """Handed-off open tickets nobody has taken, most urgent first (priority, then oldest)."""
    rows = await session.scalars(
        select(Ticket)
        .where(Ticket.status == "open", Ticket.assignee_id.is_(None), Ticket.handoff_reason.is_not(None))
        .order_by(Ticket.priority, Ticket.created_at, Ticket.id)
        .limit(limit)
    )
    return list(rows)


async def assigned_tickets(session: AsyncSession, agent_id: int, *, limit: int = 50) -> list[Ticket]:
    rows = await session.scalars(
        select(Ticket)
        .where(Ticket.assignee_id == agent_id, Ticket.status.in_(ACTIVE))
        .order_by(Ticket.priority, Ticket.created_at)
        .limit(limit)
    )
    return list(rows)


async def customer_names(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for part in chunks(sorted(set(customer_ids))):
        for cid, name in await session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(part))):
            found[cid] = name
    return found


async def tickets_due_before(session: AsyncSession, before: datetime, *, limit: int = 100) -> list[Ticket]:
    """Active tickets whose first response (not yet given) or resolution is due before `before`, soonest first."""
    rows = await session.scalars(
        select(Ticket)
        .where(
            Ticket.status.in_(ACTIVE),
            or_(
                (Ticket.first_responded_at.is_(None)) & (Ticket.first_response_due < before),
                Ticket.resolution_due < before,
            ),
        )
        .limit(limit)
    )
    tickets = list(rows)
    tickets.sort(key=lambda t: next_due(t) or before)
    return tickets


def next_due(ticket: Ticket) -> datetime | None:
    """The deadline that matters now: first response while unanswered, else resolution."""
    if ticket.first_responded_at is None and ticket.first_response_due is not None:
        return ticket.first_response_due
    return ticket.resolution_due


async def set_agent_status(session: AsyncSession, agent_id: int, status: str) -> None:
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(status=status).execution_options(synchronize_session=False)
    )


async def ticket_by_topic(session: AsyncSession, topic_ref: str) -> Ticket | None:
    return await session.scalar(select(Ticket).where(Ticket.topic_ref == topic_ref).limit(1))



async def set_topic_refs(session: AsyncSession, topics: dict[int, str]) -> None:
    """Remember which forum topic mirrors each ticket (ticket id → ``chat:thread``)."""
    for ticket_id, topic_ref in topics.items():
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(topic_ref=topic_ref[:64])
            .execution_options(synchronize_session=False)
        )


async def find_customers(session: AsyncSession, words: str, tiers: tuple[str, ...], *, limit: int) -> list[Customer]:
    """Live customers whose name or external reference contains `words` (any case), within `tiers` (() is
    every tier), oldest first."""
    pattern = contains_pattern(words.lower())
    tier = func.coalesce(Customer.manual_tier, Customer.tier)
    stmt = select(Customer).where(
        Customer.merged_into_id.is_(None),
        Customer.erased_at.is_(None),
        or_(
            func.lower(Customer.name).like(pattern, escape="\\"),
            func.lower(Customer.external_ref).like(pattern, escape="\\"),
        ),
    )
    if tiers:
        stmt = stmt.where(tier.in_(tiers))
    return list(await session.scalars(stmt.order_by(Customer.id).limit(limit)))
