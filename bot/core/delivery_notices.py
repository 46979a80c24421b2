"""Telling an agent what became of their reply, once the outbox knows: "delivered" after the channel took it,
or why it failed for good. The desk marks the replies it wants confirmed (outbox meta `CONFIRM_TO`: where the
agent wrote from); the outbox worker calls `delivered` in the transaction that records the sends, and reads
`confirm_address` when it gives one up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbound import outbox_row
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories.outbox import Reply

CONFIRM_TO = "confirm_to"
"""Outbox meta "channel:recipient": tell this address when the row is delivered or fails."""
CONFIRM_NAME = "confirm_name"
"""Outbox meta: the customer's name as the confirmation says it."""


@dataclass(frozen=True, slots=True)
class ReplyState:
    """Where an agent's reply stands, as the desk and the web inbox say it."""

    state: str
    """queued | delivered | failed"""
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason else self.state


def reply_state(status: str, error: str | None = None) -> ReplyState:
    """The state of a reply from what the outbox recorded: pending (being tried) is queued, sent is delivered,
    failed is failed for good, with why."""
    if status == "sent":
        return ReplyState("delivered")
    if status == "failed":
        return ReplyState("failed", (error or "failed")[:300])
    return ReplyState("queued")


def queued_text(name: str, ticket_id: int, then: str = "") -> str:
    """What an agent reads when their reply is written, before anything was sent: "queued", never "sent"."""
    return f"Queued for {name or 'the customer'} on T-{ticket_id}{then}."


def confirm_address(item: Reply) -> tuple[str, str] | None:
    channel, _, recipient = str((item.meta or {}).get(CONFIRM_TO, "")).partition(":")
    return (channel, recipient) if channel and recipient else None


async def delivered(session: AsyncSession, items: Iterable[Reply], *, at: datetime) -> int:
    """Queue "Delivered to Mei on T-4." for every sent item that asked for it; how many were queued."""
    rows = []
    for item in items:
        where = confirm_address(item)
        if where is None or item.ticket_id is None:
            continue
        name = (item.meta or {}).get(CONFIRM_NAME) or "the customer"
        rows.append(
            outbox_row(
                key=f"o{item.id}:delivered",
                channel=where[0],
                recipient=where[1],
                author="system",
                audience="desk",
                text=f"Delivered to {name} on T-{item.ticket_id} via {item.channel}.",
                at=at,
                ticket_id=item.ticket_id,
                customer_id=item.customer_id,
                agent_id=item.agent_id,
            )
        )
    if rows:
        await outbox_repo.enqueue(session, rows)
    return len(rows)
