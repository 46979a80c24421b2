"""Delivery receipts a channel reports after a send (WhatsApp's statuses): each stored once. A failure shows on
the ticket of the message it is about (its delivery problem and a `delivery_failed` event), as a bounce does,
turns its outbox row from sent to failed with the reason, and is acted on: a reply refused for the 24-hour
window goes again as the configured template, any other failed reply is reported to the agent who wrote it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbound import outbox_row, preferred_address
from crm_store.models import OutboxItem
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import receipts as receipts_repo
from crm_store.repositories import tickets as tickets_repo

OUTSIDE_WINDOW = "131047"


async def record(
    session: AsyncSession, channel: str, receipts: list[dict[str, Any]], *, at: datetime, template: bool = False
) -> int:
    """Store what is new and act on new failures; `template`: the channel has a template for replies outside
    the window. Returns how many receipts were new."""
    fresh = await receipts_repo.record_receipts(session, channel, receipts, at=at)
    failed = [r for r in fresh if r["status"] == "failed"]
    items = await receipts_repo.sent_items(session, channel, [r["external_id"] for r in failed]) if failed else {}
    rows = []
    for receipt in failed:
        ticket_id, item = receipt["ticket_id"], items.get(receipt["external_id"])
        if ticket_id is not None:
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
        if item is not None:  # the outbox says what became of the send, not only that it left
            item.status = "failed"
            item.last_error = f"reported by {channel} after the send: {receipt['error'] or 'failed'}"[:1000]
        if item is not None and item.audience == "customer":
            row = await _follow_up(session, item, receipt["error"], at, template=template)
            rows.extend([row] if row else [])
    if rows:
        await outbox_repo.enqueue(session, rows)
    return len(fresh)


async def _follow_up(
    session: AsyncSession, item: OutboxItem, error: str, at: datetime, *, template: bool
) -> dict[str, Any] | None:
    """The template re-send of a reply refused for the window, else a word to its agent; None when neither."""
    meta = dict(item.meta or {})
    if error.startswith(OUTSIDE_WINDOW) and template and meta.get("whatsapp_template") != "1":
        return outbox_row(
            key=f"o{item.id}:template",
            channel=item.channel,
            recipient=item.recipient,
            text=item.text,
            author=item.author,
            audience="customer",
            at=at,
            ticket_id=item.ticket_id,
            customer_id=item.customer_id,
            agent_id=item.agent_id,
            meta={**meta, "whatsapp_template": "1"},
        )
    if item.agent_id is None:
        return None
    where = preferred_address((await agents_repo.addresses_of(session, [item.agent_id])).get(item.agent_id, []))
    if where is None:
        return None
    ticket = f"T-{item.ticket_id}" if item.ticket_id else "a ticket"
    return outbox_row(
        key=f"o{item.id}:undelivered",
        channel=where[0],
        recipient=where[1],
        author="system",
        audience="desk",
        at=at,
        ticket_id=item.ticket_id,
        customer_id=item.customer_id,
        agent_id=item.agent_id,
        text=f"Your reply on {ticket} was not delivered via {item.channel}: {error[:300]}",
    )
