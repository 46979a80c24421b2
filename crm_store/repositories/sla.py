"""SLA timers and queue pickup: breached tickets found by index, once-only escalation, capacity-safe claims.

Once-only without a lock service: an escalation is a conditional UPDATE that only matches while the ticket is
still at the level the decision was made from, so of many workers exactly one sees a changed row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Customer, Ticket, now
from crm_store.repositories._sql import dialect
from crm_store.repositories.value import lock_for_writing

ACTIVE = ("open", "pending")


async def breached_tickets(session: AsyncSession, at: datetime, *, limit: int = 200) -> list[Ticket]:
    """Active tickets past a due time they have not been escalated for yet (each query walks its own index)."""
    first = (
        select(Ticket)
        .where(
            Ticket.status.in_(ACTIVE), Ticket.first_response_due < at, Ticket.first_responded_at.is_(None),
            Ticket.escalation_level < 1,
        )
        .order_by(Ticket.first_response_due)
        .limit(limit)
    )
    resolution = (
        select(Ticket)
        .where(Ticket.status.in_(ACTIVE), Ticket.resolution_due < at, Ticket.escalation_level < 2)
        .order_by(Ticket.resolution_due)
        .limit(limit)
    )
    found: dict[int, Ticket] = {}
    for query in (first, resolution):
        for ticket in await session.scalars(query):
            found[ticket.id] = ticket
    return list(found.values())


async def escalate_if_at_level(
    session: AsyncSession, ticket_id: int, *, old_level: int, new_level: int, priority: int, at: datetime
) -> bool:
    """Raise the level and priority only if the ticket is still at `old_level`; True for the one caller who did."""
    result = await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.escalation_level == old_level)
        .values(
            escalation_level=new_level, priority=priority, updated_at=at,
            sla_breached_at=func.coalesce(Ticket.sla_breached_at, at),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def reassign_if_assigned_to(
    session: AsyncSession, ticket_id: int, *, old_agent_id: int | None, new_agent_id: int | None
) -> bool:
    cond = Ticket.assignee_id.is_(None) if old_agent_id is None else Ticket.assignee_id == old_agent_id
    result = await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, cond)
        .values(assignee_id=new_agent_id, updated_at=now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def waiting_tickets(session: AsyncSession, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Handed-off open tickets nobody has, with what the pickup needs (the customer's KAM included)."""
    rows = await session.execute(
        select(
            Ticket.id, Ticket.tier_at_open, Ticket.priority, Ticket.created_at, Ticket.queue, Ticket.language,
            Ticket.skill, Customer.key_account_manager_id,
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.status == "open", Ticket.assignee_id.is_(None), Ticket.handoff_reason.is_not(None))
        .order_by(Ticket.priority, Ticket.created_at)
        .limit(limit)
    )
    keys = ("id", "tier", "priority", "opened_at", "queue", "language", "skill", "key_account_manager_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def claim_for_agent(session: AsyncSession, ticket_id: int, agent_id: int) -> bool:
    """Give an unassigned ticket to an agent if they are online and under capacity, checked under a row lock.

    On PostgreSQL the agent row is locked, so two workers cannot both fill an agent's last free slot; on SQLite
    the transaction holds the single write lock from its start (call this first in the transaction).
    """
    await lock_for_writing(session)
    q = select(Agent.capacity, Agent.status).where(Agent.id == agent_id)
    if dialect(session) == "postgresql":
        q = q.with_for_update()
    row = (await session.execute(q)).first()
    if row is None or row.status != "online":
        return False
    load = await session.scalar(
        select(func.count(Ticket.id)).where(Ticket.assignee_id == agent_id, Ticket.status.in_(ACTIVE))
    )
    if (load or 0) >= row.capacity:
        return False
    return await reassign_if_assigned_to(session, ticket_id, old_agent_id=None, new_agent_id=agent_id)
