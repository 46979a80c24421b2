"""SLA timers, queue pickup and snooze: the candidates the SLA worker looks at, found by index, and the
capacity check a pickup makes under a lock.

The changes themselves are the ticket core's guarded decisions (`bot.tickets.sla`): a decision only takes effect
while the ticket still has the values it was made from, so of many workers exactly one sees a changed row.
Only tickets handed to a person run clocks; imported history never does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Customer, Ticket
from crm_store.repositories._sql import dialect

ACTIVE = ("open", "pending")
IMPORTED = "imported"


def _clocked() -> tuple[Any, ...]:
    """Tickets that run SLA clocks: handed off to a person, and not imported history."""
    return (Ticket.handoff_reason.is_not(None), Ticket.source != IMPORTED)


async def breached_tickets(session: AsyncSession, at: datetime, *, limit: int = 200) -> list[Ticket]:
    """Active tickets past a due time they have not been escalated for yet (each query walks its own index)."""
    first = (
        select(Ticket)
        .where(
            Ticket.status.in_(ACTIVE), Ticket.first_response_due < at, Ticket.first_responded_at.is_(None),
            Ticket.escalation_level < 1, *_clocked(),
        )
        .order_by(Ticket.first_response_due)
        .limit(limit)
    )
    resolution = (
        select(Ticket)
        .where(Ticket.status.in_(ACTIVE), Ticket.resolution_due < at, Ticket.escalation_level < 2, *_clocked())
        .order_by(Ticket.resolution_due)
        .limit(limit)
    )
    found: dict[int, Ticket] = {}
    for query in (first, resolution):
        for ticket in await session.scalars(query):
            found[ticket.id] = ticket
    return list(found.values())


async def waiting_tickets(session: AsyncSession, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Handed-off open tickets nobody has, with what the pickup needs (the customer's KAM included); imported
    history is filed, not offered to anyone."""
    rows = await session.execute(
        select(
            Ticket.id, Ticket.tier_at_open, Ticket.priority, Ticket.created_at, Ticket.queue, Ticket.language,
            Ticket.skill, Customer.key_account_manager_id,
        )
        .join(Customer, Customer.id == Ticket.customer_id)
        .where(Ticket.status == "open", Ticket.assignee_id.is_(None), *_clocked())
        .order_by(Ticket.priority, Ticket.created_at)
        .limit(limit)
    )
    keys = ("id", "tier", "priority", "opened_at", "queue", "language", "skill", "key_account_manager_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def agent_has_room(session: AsyncSession, agent_id: int) -> bool:
    """Whether the agent is online and under capacity, checked so that two workers cannot both fill their last
    free slot: on PostgreSQL the agent row stays locked until the transaction ends; on SQLite the transaction
    must hold the single write lock from its start (begin it with `lock_for_writing`)."""
    q = select(Agent.capacity, Agent.status).where(Agent.id == agent_id)
    if dialect(session) == "postgresql":
        q = q.with_for_update()
    row = (await session.execute(q)).first()
    if row is None or row.status != "online":
        return False
    load = await session.scalar(
        select(func.count(Ticket.id)).where(Ticket.assignee_id == agent_id, Ticket.status.in_(ACTIVE))
    )
    return (load or 0) < row.capacity


async def snoozed_due(session: AsyncSession, at: datetime, *, limit: int = 500) -> list[int]:
    """Pending tickets whose snooze ran out by `at`, soonest first (the status/snoozed_until index)."""
    rows = await session.scalars(
        select(Ticket.id)
        .where(Ticket.status == "pending", Ticket.snoozed_until <= at)
        .order_by(Ticket.snoozed_until, Ticket.id)
        .limit(limit)
    )
    return list(rows)
