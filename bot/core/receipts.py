"""Delivery receipts a channel reports after a send (WhatsApp's statuses): each stored once; a failure shows on
the ticket of the message it is about (its delivery problem and a `delivery_failed` event), as a bounce does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.repositories import receipts as receipts_repo
from crm_store.repositories import tickets as tickets_repo


async def record(session: AsyncSession, channel: str, receipts: list[dict[str, Any]], *, at: datetime) -> int:
    """Store what is new; returns how many receipts were new."""
    fresh = await receipts_repo.record_receipts(session, channel, receipts, at=at)
    for receipt in fresh:
        ticket_id = receipt["ticket_id"]
        if receipt["status"] != "failed" or ticket_id is None:
            continue
        ticket = await tickets_repo.get_ticket(session, ticket_id)
        ticket.delivery_problem = f"{channel}: not delivered ({receipt['error'] or 'failed'})"[:500]
        tickets_repo.add_event(
            session,
            ticket_id,
            "delivery_failed",
            at=at,
            channel=channel,
            external_id=receipt["external_id"],
            error=receipt["error"],
        )
    return len(fresh)
