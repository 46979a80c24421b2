"""Outbound webhook events for ticket changes (and customer events such as a new tier), queued through the
outbox in the caller's transaction.

The ticket writer queues them for every change it writes; without `web.webhook_url` nothing is queued.
Receivers verify the HMAC signature the webhook channel adds. Webhook events are events, not contacts: they
never appear in the contact log.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from bot.core.outbound import outbox_row
from bot.settings import Settings
from channels.webhook import customer_event_payload, ticket_event_payload
from crm_store.models import Ticket

if TYPE_CHECKING:
    from datetime import datetime

    from bot.core.outbound import BatchContext


def event_row(settings: Settings, event: str, ticket: Ticket, *, at: datetime, key: str = "",
              **data: Any) -> dict[str, Any] | None:
    """The outbox row of webhook `event` ("ticket.created", "ticket.assigned", ...) for `ticket`, or None
    without a webhook URL. `key` makes a retried transaction queue it once; without one a fresh id is used."""
    url = settings.web.webhook_url
    if not url:
        return None
    event_id = f"webhook:T-{ticket.id}:{event}:{key or uuid.uuid4().hex[:12]}"
    body = ticket_event_payload(
        event, ticket_id=ticket.id, customer_id=ticket.customer_id, status=ticket.status, tier=ticket.tier_at_open,
        queue=ticket.queue, assignee_id=ticket.assignee_id, at=at, event_id=event_id, **data,
    )
    return outbox_row(key=event_id, channel="webhook", recipient=url, text=body, author="system", audience="event",
                      at=at, ticket_id=ticket.id, customer_id=ticket.customer_id, meta={"event": event})


def queue_ticket_event(ctx: BatchContext, event: str, ticket: Ticket, *, key: str = "", **data: Any) -> None:
    row = event_row(ctx.settings, event, ticket, at=ctx.now, key=key, **data)
    if row is not None:
        ctx.outbox.append(row)



def customer_event_row(settings: Settings, event: str, customer_id: int, *, at: datetime, key: str,
                       **data: Any) -> dict[str, Any] | None:
    """The outbox row of customer webhook `event` ("customer.tier_changed"), or None without a webhook URL.
    `key` (e.g. the tier run) makes the event id stable, so a retried transaction queues it once."""
    url = settings.web.webhook_url
    if not url:
        return None
    event_id = f"webhook:C-{customer_id}:{event}:{key}"
    body = customer_event_payload(event, customer_id=customer_id, at=at, event_id=event_id, **data)
    return outbox_row(key=event_id, channel="webhook", recipient=url, text=body, author="system", audience="event",
                      at=at, customer_id=customer_id, meta={"event": event})
