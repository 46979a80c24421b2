"""What became of the messages people wrote to a ticket's customer and the outbox has not simply sent: those
still being tried and those that failed (with why), for the ticket page. A sent one is in the contact log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import OutboxItem

UNSENT = ("pending", "failed")


async def unsent_agent_replies(session: AsyncSession, ticket_id: int, *, limit: int = 200) -> list[OutboxItem]:
    """The ticket's rows that agents wrote to its customer and that are queued or failed, oldest first. Read by
    status first (the outbox's status index: sent rows, nearly all of them, are never read)."""
    rows = await session.scalars(
        select(OutboxItem)
        .where(
            OutboxItem.status.in_(UNSENT),
            OutboxItem.ticket_id == ticket_id,
            OutboxItem.audience == "customer",
            OutboxItem.author == "agent",
        )
        .order_by(OutboxItem.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))
