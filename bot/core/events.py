"""Outbound webhook events for ticket changes, queued through the outbox in the caller's transaction.

Whoever changes a ticket (the dispatcher, the desk, the SLA clock, the web) calls `ticket_event`; without
`web.webhook_url` it does nothing. Receivers verify the HMAC signature the webhook channel adds.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from channels.webhook import ticket_event_payload
from crm_store.models import Ticket, now
from crm_store.repositories import outbox as outbox_repo


async def ticket_event(
    session: AsyncSession, settings: Settings, event: str, ticket: Ticket, *, key: str = "", **data: Any
) -> None:
    """Queue `event` ("ticket.created", "ticket.assigned", ...) for `ticket`. `key` makes a retried transaction
    queue it once; without one a fresh id is used."""
    url = settings.web.webhook_url
    if not url:
        return
    at = now()
    event_id = f"webhook:T-{ticket.id}:{event}:{key or uuid.uuid4().hex[:12]}"
    body = ticket_event_payload(
        event,
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        status=ticket.status,
        tier=ticket.tier_at_open,
        queue=ticket.queue,
        assignee_id=ticket.assignee_id,
        at=at,
        event_id=event_id,
        **data,
    )
    await outbox_repo.enqueue(
        session,
        [
            {
                "idempotency_key": event_id[:255],
                "channel": "webhook",
                "recipient": url,
                "text": body,
                "subject": "",
                "reply_to": "",
                "buttons": [],
                "meta": {"author": "system", "event": event},
                "ticket_id": ticket.id,
                "customer_id": ticket.customer_id,
                "agent_id": None,
                "author": "system",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
            }
        ],
    )
