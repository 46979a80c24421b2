"""The store reads behind `/metrics`: small grouped counts that stay cheap at millions of rows (the contact
totals come from the contact-days rollup, the rest filter on indexed status columns)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, OutboxItem, Ticket
from crm_store.repositories.contact_days import refresh_contact_days, since_mark
from crm_store.rollups import ContactDay

ACTIVE = ("open", "pending")


async def contacts_by_channel(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(channel, direction) -> customer contacts ever logged: the rollup brought up to date first (it adds what was
    logged since the last refresh), and what was logged since its mark counted from the log."""
    await refresh_contact_days(session)
    await session.commit()
    rows = await session.execute(
        select(ContactDay.channel, ContactDay.direction, func.sum(ContactDay.contacts)).group_by(
            ContactDay.channel, ContactDay.direction
        )
    )
    totals = {(channel, direction): int(n or 0) for channel, direction, n in rows.all()}
    tail = select(Contact.channel, Contact.direction, func.count()).where(
        Contact.desk == false(), await since_mark(session)
    ).group_by(Contact.channel, Contact.direction)
    for channel, direction, n in (await session.execute(tail)).all():
        totals[(channel, direction)] = totals.get((channel, direction), 0) + int(n)
    return totals


async def outbox_backlog(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(channel, status) -> items not sent: waiting or in flight, and given up."""
    rows = await session.execute(
        select(OutboxItem.channel, OutboxItem.status, func.count())
        .where(OutboxItem.status != "sent")
        .group_by(OutboxItem.channel, OutboxItem.status)
    )
    return {(channel, status): int(n) for channel, status, n in rows.all()}


async def open_tickets(session: AsyncSession, at: datetime) -> tuple[dict[tuple[str], int], dict[tuple[str], int]]:
    """Tickets not closed by tier, and those of them past a due time (first response or resolution)."""
    late = or_(
        and_(Ticket.first_responded_at.is_(None), Ticket.first_response_due < at),
        Ticket.resolution_due < at,
        Ticket.sla_breached_at.is_not(None),
    )
    rows = await session.execute(
        select(Ticket.tier_at_open, func.count(), func.count().filter(late))
        .where(Ticket.status.in_(ACTIVE))
        .group_by(Ticket.tier_at_open)
    )
    open_by_tier: dict[tuple[str], int] = {}
    breached: dict[tuple[str], int] = {}
    for tier, n, n_late in rows.all():
        open_by_tier[(tier,)] = int(n)
        breached[(tier,)] = int(n_late or 0)
    return open_by_tier, breached
