"""Writing replies into the outbox within the batch transaction, addressed the way each channel needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.assistant.responder import Responder
from bot.core.messages import Button, InboundMessage
from bot.core.notice_digest import WaitingNotice, merge_waiting
from bot.routing.policy import AgentState, RoutingPolicy
from bot.settings import Settings
from channels.base import section_of, traits_of
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import tickets as tickets_repo


async def load_agent_states(session: AsyncSession) -> dict[int, AgentState]:
    """Every agent as routing sees them: what they serve, their status and capacity, their open tickets, and
    whether they are handed tickets automatically (unset: agents are, supervisors and admins are not). The
    transaction holds the routing lock from here to its commit: what it assigns, it assigns on loads no other
    transaction is changing."""
    return {
        a.id: AgentState(
            id=a.id, status=a.status, role=a.role, tiers=tuple(a.tiers or ()), queues=tuple(a.queues or ()),
            languages=tuple(a.languages or ()), skills=tuple(a.skills or ()), capacity=a.capacity,
            open_tickets=load, auto_assign=a.auto_assign if a.auto_assign is not None else a.role == "agent",
        )
        for a, load in await agents_repo.agents_with_load(session, routing=True)
    }


@dataclass
class BatchContext:
    """Everything one batch transaction shares: the session, the clock, caches and what it will write."""

    session: AsyncSession
    now: datetime
    settings: Settings
    policy: RoutingPolicy
    responder: Responder
    outbox: list[dict[str, Any]] = field(default_factory=list)
    contact_updates: list[dict[str, Any]] = field(default_factory=list)
    logged_with: dict[int, int] = field(default_factory=dict)
    """Contacts inserted with their ticket already set (contact id → ticket id)."""
    active: dict[int, Ticket] = field(default_factory=dict)
    latest: dict[int, Ticket] = field(default_factory=dict)
    opened: set[int] = field(default_factory=set)
    """Tickets opened in this batch: they have no earlier messages to look up."""
    facts: dict[int, dict[str, Any]] = field(default_factory=dict)
    threads: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    """(ticket, channel) → the conversation's message ids there, oldest first, loaded for the batch at once."""
    followup_events: tickets_repo.EventKinds | None = None
    """The batch's tickets' events that decide whether a follow-up is acknowledged, loaded at once."""
    waiting_notices: list[WaitingNotice] = field(default_factory=list)
    """Announcements of waiting tickets in `outbox`, merged per agent before it is written (`rows_to_write`)."""
    _agents: dict[int, AgentState] | None = None
    _addresses: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def changed_contacts(self) -> list[dict[str, Any]]:
        """The contact updates that change something: setting the ticket a contact was logged with is none."""
        return [
            u
            for u in self.contact_updates
            if not (u.keys() == {"id", "ticket_id"} and self.logged_with.get(u["id"]) == u["ticket_id"])
        ]

    async def agent_addresses(self, agent_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
        """Agents' channel addresses, each looked up once per batch."""
        missing = [a for a in agent_ids if a not in self._addresses]
        if missing and self._agents is not None:  # every agent's at once: a batch notifies most of them
            missing = sorted({*missing, *self._agents} - self._addresses.keys())
        if missing:
            found = await agents_repo.addresses_of(self.session, missing)
            for aid in missing:
                self._addresses[aid] = found.get(aid, [])
        return {a: self._addresses[a] for a in agent_ids}

    async def agent_states(self) -> dict[int, AgentState]:
        """Agents with their current load, loaded once per batch and kept current as tickets are assigned."""
        if self._agents is None:
            self._agents = await load_agent_states(self.session)
        return self._agents

    async def note_assignment(self, agent_id: int | None, delta: int = 1) -> None:
        agents = await self.agent_states()
        state = agents.get(agent_id) if agent_id is not None else None
        if state is not None:
            from dataclasses import replace

            agents[state.id] = replace(state, open_tickets=max(0, state.open_tickets + delta))

    def rows_to_write(self) -> list[dict[str, Any]]:
        """The outbox rows, each agent's several waiting-ticket announcements merged into one digest."""
        merge_waiting(self.outbox, self.waiting_notices)
        return self.outbox

    def queue_message(self, **fields: Any) -> dict[str, Any]:
        """Add one outbox row (see `outbox_row`), sent after this transaction commits."""
        row = outbox_row(at=self.now, **fields)
        self.outbox.append(row)
        return row


AUDIENCES = ("customer", "desk", "event")
"""Who an outbox row is for: a customer (logged as a contact when sent), the desk (agents' notices and
answers: logged apart, never a customer contact) or a system (webhook events: not contacts at all)."""


def outbox_row(
    *,
    key: str,
    channel: str,
    recipient: str,
    text: str,
    author: str,
    at: datetime,
    audience: str | None = None,
    ticket_id: int | None = None,
    customer_id: int | None = None,
    agent_id: int | None = None,
    subject: str = "",
    reply_to: str = "",
    buttons: tuple[Button, ...] = (),
    meta: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The one shape of an outbox row, whoever writes it. `audience` defaults from the author: what the bot or
    an agent says goes to a customer, what the system says goes to the desk."""
    audience = audience or ("desk" if author == "system" else "customer")
    if audience not in AUDIENCES:
        raise ValueError(f"unknown outbox audience {audience!r}")
    meta = dict(meta or {})
    meta.setdefault("author", author)
    return {
        "idempotency_key": key[:255],
        "channel": channel,
        "recipient": recipient,
        "text": text,
        "subject": subject[:255],
        "reply_to": reply_to,
        "buttons": [[b.label, b.data] for b in buttons],
        "meta": meta,
        "ticket_id": ticket_id,
        "customer_id": customer_id,
        "agent_id": agent_id,
        "author": author,
        "audience": audience,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "claimed_by": None,
    }


async def reply_to_customer(ctx: BatchContext, ticket: Ticket, text: str, **kwargs: Any) -> None:
    """Queue a message to the ticket's customer (see `address_customer`)."""
    ctx.outbox.append(await address_customer(ctx, ticket, text, **kwargs))


async def address_customer(
    ctx: BatchContext,
    ticket: Ticket,
    text: str,
    *,
    key: str,
    author: str,
    agent_id: int | None = None,
    buttons: tuple[Button, ...] = (),
    inbound: InboundMessage | None = None,
) -> dict[str, Any]:
    """The outbox row for a message to the customer: on the channel the customer last wrote from on this
    ticket, threaded the way that channel threads (its `reply_fields` hook). Raises LookupError when the
    customer has no address there.

    `inbound` is the message being answered right now (not yet visible as a committed contact).
    """
    last = None if inbound is not None else await contacts_repo.last_inbound(ctx.session, ticket.id)
    if inbound is not None:
        channel, address = inbound.channel, inbound.sender
        last_ext, last_subject = inbound.external_id, inbound.meta_value("subject")
    else:
        channel = last.channel if last else ticket.channel
        address = last.address if last else ""
        last_ext, last_subject = (last.external_id, last.subject or "") if last else ("", "")
    if not address:
        for ident in await _identities(ctx, ticket.customer_id):
            if ident.channel == channel:
                address = ident.address
                break
    if not address:
        raise LookupError(f"ticket T-{ticket.id}: no address for the customer on {channel}")
    traits = traits_of(channel)
    refs = await _thread_refs(ctx, ticket, channel, inbound) if traits.threads else []
    fields = traits.reply_fields(ticket.id, last_subject or ticket.subject or "", last_ext, refs)
    return outbox_row(
        at=ctx.now,
        audience="customer",
        key=key,
        channel=channel,
        recipient=address,
        text=text,
        author=author,
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        agent_id=agent_id,
        subject=fields.subject,
        reply_to=fields.reply_to,
        buttons=buttons,
        meta=dict(fields.meta),
    )


async def _thread_refs(ctx: BatchContext, ticket: Ticket, channel: str, inbound: InboundMessage | None) -> list[str]:
    """The external ids of the conversation on `channel`, oldest first, ending with the message being answered."""
    if ticket.id in ctx.opened:
        refs = []
    elif (ticket.id, channel) in ctx.threads:
        refs = ctx.threads[(ticket.id, channel)]
    else:
        refs = await contacts_repo.thread_message_ids(ctx.session, ticket.id, channel)
    if inbound is not None:
        refs = [r for r in inbound.thread_ref.split() if r not in refs] + refs + [inbound.external_id]
    return refs


async def _identities(ctx: BatchContext, customer_id: int):
    from crm_store.repositories.customers import identities_of

    return await identities_of(ctx.session, customer_id)


def preferred_address(addresses: list[tuple[str, str]]) -> tuple[str, str] | None:
    """Where to reach an agent: their address on the channel ranked highest for the desk (`desk_rank`: the one
    agents work in), the first one listed among equals; None when they have no address."""
    if not addresses:
        return None
    best = max(traits_of(ch).desk_rank for ch, _ in addresses)
    return next((ch, addr) for ch, addr in addresses if traits_of(ch).desk_rank == best)


def bot_reply_cap(settings: Settings, channel: str) -> int:
    """How many answers the bot may give one sender in an hour on `channel`: the channel section's own cap when
    it has one (email's, against auto-reply loops), else `dispatch.bot_replies_per_sender_per_hour`."""
    cap = getattr(section_of(settings, channel), traits_of(channel).bot_reply_cap_field, None)
    return int(cap) if isinstance(cap, int) else settings.dispatch.bot_replies_per_sender_per_hour


async def notify_agents(
    ctx: BatchContext,
    agent_ids: list[int],
    text: str,
    *,
    key: str,
    ticket_id: int | None = None,
    customer_id: int | None = None,
    buttons: tuple[Button, ...] = (),
    waiting: tuple[str, str] | None = None,
) -> int:
    """Tell agents something on their preferred channel; returns how many were reachable. An announcement of a
    ticket `waiting` in a queue ((queue, the ticket in one line)) may end up in a digest (`merge_waiting`)."""
    if not agent_ids:
        return 0
    addresses = await ctx.agent_addresses(agent_ids)
    sent = 0
    for aid in agent_ids:
        where = preferred_address(addresses.get(aid, []))
        if where is None:
            continue
        row = ctx.queue_message(
            key=f"{key}:a{aid}",
            channel=where[0],
            recipient=where[1],
            text=text,
            author="system",
            audience="desk",
            ticket_id=ticket_id,
            customer_id=customer_id,
            agent_id=aid,
            buttons=buttons,
        )
        if waiting is not None and ticket_id is not None:
            ctx.waiting_notices.append(WaitingNotice(row, waiting[0], waiting[1], ticket_id))
        sent += 1
    return sent
