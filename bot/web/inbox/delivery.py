"""An agent's messages on the ticket page with what became of them: queued (the outbox is still trying),
delivered (sent: in the contact log), or failed with the reason. The states are the desk's
(`bot.core.delivery_notices.reply_state`), read from what the outbox recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from bot.core.delivery_notices import ReplyState, queued_text, reply_state
from bot.core.names import readable_name
from crm_store.models import Contact, Customer, Identity, Ticket
from crm_store.repositories import deliveries as deliveries_repo

QUEUED_ANCHOR = "?queued=1#transcript"
"""Where a posted reply lands: the ticket page, saying the reply is queued (never "sent")."""


def queued_notice(request: Request, customer: Customer, identities: Sequence[Identity], ticket: Ticket) -> str:
    """ "Queued for Anna on T-12 …" after a reply was posted; the message's own state follows it below."""
    if request.query_params.get("queued") != "1":
        return ""
    name = readable_name(customer.name, [i.channel for i in identities], "the customer")
    return queued_text(name, ticket.id, "; it shows as delivered below once it is sent")


@dataclass(frozen=True)
class Unsent:
    """An agent's message that is not in the contact log (yet): shown where it was written."""

    id: str
    channel: str
    agent_id: int | None
    ticket_id: int | None
    text: str
    created_at: datetime
    direction: str = "out"
    author: str = "agent"
    nlu: dict[str, Any] = field(default_factory=dict)
    attachments: tuple = ()


async def transcript(
    session: AsyncSession, ticket_id: int, contacts: Sequence[Contact]
) -> tuple[list[Any], dict[Any, ReplyState]]:
    """The ticket's messages, agents' unsent ones among them, and the delivery state of each agent message
    (by its id in the list: a contact's number, or "o12" for outbox row 12)."""
    unsent = await deliveries_repo.unsent_agent_replies(session, ticket_id)
    failed = {(o.channel, o.external_id): o for o in unsent if o.status == "failed" and o.external_id}
    states: dict[Any, ReplyState] = {}
    rows: list[Any] = list(contacts)
    for c in contacts:
        if c.direction == "out" and c.author == "agent":
            gave_up = failed.pop((c.channel, c.external_id), None)  # sent, then refused (a receipt said so)
            states[c.id] = reply_state(gave_up.status, gave_up.last_error) if gave_up else reply_state("sent")
    shown = {id(o) for o in failed.values()}
    for o in unsent:
        if o.status == "pending" or id(o) in shown or not o.external_id:
            row = Unsent(
                id=f"o{o.id}",
                channel=o.channel,
                agent_id=o.agent_id,
                ticket_id=o.ticket_id,
                text=o.text,
                created_at=o.created_at,
            )
            rows.append(row)
            states[row.id] = reply_state(o.status, o.last_error)
    rows.sort(key=lambda r: r.created_at)
    return rows, states
