"""Handing a ticket to a person: route it by the customer's stored tier among the agents as they are now, then
write the core's routing decision. The dispatcher (a message the bot cannot answer), the REST API and the
rasa-sdk actions (a ticket opened for a customer) all come through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.forum import forum_name_of
from bot.routing.policy import RouteRequest, route
from bot.tickets import lifecycle
from bot.tickets.access import Actor
from bot.tickets.decision import Decision
from bot.tickets.writer import apply
from crm_store.models import Ticket
from crm_store.repositories import tickets as tickets_repo

if TYPE_CHECKING:
    from bot.core.messages import InboundMessage
    from bot.core.outbound import BatchContext


@dataclass(frozen=True, slots=True)
class Handoff:
    """What routing and the agents' notice need to know of the customer and of what they asked."""

    tier: str
    language: str | None
    key_account_manager_id: int | None
    customer_name: str
    text: str
    channel: str
    subject: str
    reason: str | None
    intent: str | None = None
    imported: bool = False
    ack: bool = True
    """Acknowledge to the customer (not when they did not write, nor when another assistant answers them)."""


async def hand_off(ctx: BatchContext, ticket: Ticket, h: Handoff, actor: Actor, *, cause: str,
                   inbound: InboundMessage | None = None) -> Decision:
    agents = await ctx.agent_states()
    request = RouteRequest(tier=h.tier, opened_at=ctx.now, language=h.language,
                           key_account_manager_id=h.key_account_manager_id)
    routed = route(request, list(agents.values()), ctx.policy)
    decision = lifecycle.route(
        ticket, routed, tier=h.tier, reason=h.reason, intent=h.intent, language=h.language, agents=agents.values(),
        customer_name=h.customer_name, text=h.text, channel=h.channel, subject=h.subject, now=ctx.now,
        imported=h.imported, ack=h.ack, assignee_name=await forum_name_of(ctx, routed.assignee_id),
    )
    return await apply(ctx, ticket, decision, actor, cause=cause, inbound=inbound)


async def open_for_person(ctx: BatchContext, customer_id: int, h: Handoff, actor: Actor, *, cause: str,
                          source: str) -> Ticket:
    """A ticket opened on a customer's behalf (an API call, another assistant) and handed to a person at once."""
    fields = lifecycle.open_fields(customer_id=customer_id, channel=h.channel, tier=h.tier, now=ctx.now,
                                   subject=h.subject, source=source)
    ticket = await tickets_repo.open_ticket(ctx.session, **fields)
    tickets_repo.add_event(ctx.session, ticket.id, "opened", actor=actor.label, agent_id=actor.agent_id, at=ctx.now,
                           channel=h.channel, source=source, intent=h.intent)
    ctx.opened.add(ticket.id)
    await hand_off(ctx, ticket, h, actor, cause=cause)
    return ticket
