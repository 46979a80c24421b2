"""Shared steps for the desk tests (no tests here): an agent types, the rows it left behind are read back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.core.messages import OutboundMessage
from bot.core.outbound import load_agent_states
from crm_store.models import Note, OutboxItem, Ticket, TicketEvent

BAD_TICKET_NUMBERS = {
    "T-99999999999999999999": "Ticket T-99999999999999999999 does not exist.",
    "-3": "'-3' is not a ticket number (write 12 or T-12).",
    "abc": "'abc' is not a ticket number (write 12 or T-12).",
}


async def say(h, who: str, text: str, **kwargs: Any) -> OutboundMessage:
    """`who` types `text` on the console; returns the desk's (last) answer to them."""
    before = len([m for m in h.ch["console"].sent if m.recipient == who])
    await h.ch["console"].receive(who, text, **kwargs)
    await h.settle()
    mine = [m for m in h.ch["console"].sent if m.recipient == who]
    assert len(mine) > before, f"no answer to {who} for {text!r}"
    return mine[-1]


async def customer_writes(h, address: str, text: str, channel: str = "telegram") -> int:
    """A customer asks for something the bot cannot answer: returns the ticket's number."""
    r = await h.ch[channel].receive(address, text)
    await h.settle()
    return r.ticket_id


async def ticket(h, ticket_id: int) -> Ticket:
    async with h.app.sessions() as s:
        return await s.get(Ticket, ticket_id)


async def events(h, ticket_id: int, kind: str | None = None) -> list[TicketEvent]:
    async with h.app.sessions() as s:
        q = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
        if kind:
            q = q.where(TicketEvent.kind == kind)
        return list(await s.scalars(q.order_by(TicketEvent.id)))


async def kinds(h, ticket_id: int) -> list[str]:
    return [e.kind for e in await events(h, ticket_id)]


async def outbox(h, **equal: Any) -> list[OutboxItem]:
    """Outbox rows whose columns equal `equal` (audience="customer", recipient="alice", ...)."""
    async with h.app.sessions() as s:
        q = select(OutboxItem).where(*(getattr(OutboxItem, k) == v for k, v in equal.items()))
        return list(await s.scalars(q.order_by(OutboxItem.id)))


async def to_customer(h, ticket_id: int) -> list[str]:
    return [o.text for o in await outbox(h, ticket_id=ticket_id, audience="customer")]


async def notes(h, ticket_id: int) -> list[str]:
    async with h.app.sessions() as s:
        return list(await s.scalars(select(Note.text).where(Note.ticket_id == ticket_id).order_by(Note.id)))


async def load_of(h, agent_id: int) -> int:
    """Open and pending tickets the agent holds, as routing counts them."""
    async with h.app.sessions() as s:
        return (await load_agent_states(s))[agent_id].open_tickets


def buttons(message: OutboundMessage) -> list[tuple[str, str]]:
    return [(b.label, b.data) for b in message.buttons]
