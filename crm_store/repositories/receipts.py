"""Delivery receipts: stored once each, and found with the ticket of the message they are about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, OutboxItem
from crm_store.receipts import DeliveryReceipt
from crm_store.repositories._sql import chunks, insert_ignoring_conflicts, row_chunks


async def record_receipts(
    session: AsyncSession, channel: str, receipts: list[dict[str, Any]], *, at: datetime
) -> list[dict[str, Any]]:
    """Store receipts (external_id, status, error, at) not stored before; returns those that were
    new, each with the `ticket_id` of the outbound contact it is about (None when no such message was logged)."""
    if not receipts:
        return []
    tickets = await _tickets_of(session, channel, sorted({r["external_id"] for r in receipts}))
    rows = [
        {
            "channel": channel,
            "external_id": r["external_id"],
            "status": r["status"],
            "error": r.get("error", "")[:500],
            "ticket_id": tickets.get(r["external_id"]),
            "at": r.get("at") or at,
            "logged_at": at,
        }
        for r in receipts
    ]
    stmt = insert_ignoring_conflicts(session, DeliveryReceipt, ("external_id", "status"))
    new: set[tuple[str, str]] = set()
    for part in row_chunks(rows):
        new.update((ext, status) for ext, status in await session.execute(stmt, part))
    fresh, seen = [], set()
    for row in rows:
        key = (row["external_id"], row["status"])
        if key in new and key not in seen:
            seen.add(key)
            fresh.append(row)
    return fresh


async def _tickets_of(session: AsyncSession, channel: str, external_ids: list[str]) -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for part in chunks(external_ids, 300):
        query = select(Contact.external_id, Contact.ticket_id).where(
            Contact.channel == channel, Contact.direction == "out", Contact.external_id.in_(part)
        )
        found.update({ext: ticket for ext, ticket in await session.execute(query)})
    return found


async def receipts_of(session: AsyncSession, channel: str, external_id: str) -> list[DeliveryReceipt]:
    """A sent message's receipts, in the order they were logged."""
    query = (
        select(DeliveryReceipt)
        .where(DeliveryReceipt.channel == channel, DeliveryReceipt.external_id == external_id)
        .order_by(DeliveryReceipt.id)
    )
    return list(await session.scalars(query))


async def sent_items(session: AsyncSession, channel: str, external_ids: list[str]) -> dict[str, OutboxItem]:
    """The outbox rows that were sent as these external ids (to re-send or to tell their author)."""
    found: dict[str, OutboxItem] = {}
    for part in chunks(sorted(set(external_ids)), 300):
        query = select(OutboxItem).where(OutboxItem.channel == channel, OutboxItem.external_id.in_(part))
        found.update({item.external_id or "": item for item in await session.scalars(query)})
    return found
