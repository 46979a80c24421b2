"""The one writer: turns a ticket `Decision` into rows for every caller (desk, dispatcher, web, API, SLA clock).

Order matters so that a refused operation writes nothing: messages to the customer are addressed first (no
address refuses the operation), then the guarded field change (a lost race refuses it), and only then events,
webhooks, outbox rows, notes and load changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm.attributes import set_committed_value

from bot.core import metrics
from bot.core.events import queue_ticket_event
from bot.core.forum import post_to_forum
from bot.core.outbound import address_customer, notify_agents
from bot.tickets.access import Actor, TicketError
from bot.tickets.decision import Decision
from bot.tickets.rules import ACTIVE
from crm_store.models import Ticket
from crm_store.repositories import ticket_rollup
from crm_store.repositories import tickets as tickets_repo

if TYPE_CHECKING:
    from bot.core.messages import InboundMessage
    from bot.core.outbound import BatchContext


async def apply(
    ctx: BatchContext, ticket: Ticket, decision: Decision, actor: Actor, *, cause: str,
    inbound: InboundMessage | None = None,
) -> Decision:
    """Write `decision` for `ticket` in the caller's transaction. `cause` (a contact id like "c12", or a request
    id) prefixes every outbox key, so a retried transaction sends nothing twice. Raises `TicketError` (and writes
    nothing) when the customer cannot be reached or the ticket changed meanwhile."""
    rows = []
    for m in decision.to_customer:
        try:
            rows.append(await address_customer(
                ctx, ticket, m.text, key=f"{cause}:{m.key}", author=m.author, buttons=m.buttons, inbound=inbound,
                agent_id=actor.agent_id if m.author == "agent" else None,
            ))
        except LookupError as exc:
            if not m.optional:
                raise TicketError(f"Cannot reach the customer of T-{ticket.id}: {exc}", code="conflict") from exc
    load = decision.load_change(ticket)
    before = ticket.status
    await _change(ctx, ticket, decision)
    _count(ticket, decision, before)
    ctx.outbox.extend(rows)
    for kind, data in decision.events:
        tickets_repo.add_event(ctx.session, ticket.id, kind, actor=actor.label, agent_id=actor.agent_id, at=ctx.now,
                               **data)
    if decision.note is not None:
        saved = await tickets_repo.add_note(ctx.session, customer_id=ticket.customer_id, ticket_id=ticket.id,
                                            agent_id=actor.agent_id, text=decision.note)
        tickets_repo.add_event(ctx.session, ticket.id, "note", actor=actor.label, agent_id=actor.agent_id,
                               at=ctx.now, note_id=saved.id)
    for name, data in decision.webhooks:
        queue_ticket_event(ctx, name, ticket, key=cause, **data)
    for agent_id, delta in load.items():
        await ctx.note_assignment(agent_id, delta)
    for notice in decision.notices:
        await notify_agents(ctx, list(notice.agent_ids), notice.text, key=f"{cause}:{notice.key}",
                            ticket_id=ticket.id, customer_id=ticket.customer_id, buttons=notice.buttons,
                            waiting=notice.waiting)
    for post in decision.forum:
        post_to_forum(ctx, ticket, post.text, key=f"{cause}:{post.key}", customer_name=post.customer_name,
                      tier=post.tier, buttons=post.buttons, close_topic=post.close_topic)
    return decision


def _count(ticket: Ticket, decision: Decision, before: str | None) -> None:
    """The ticket counters of /metrics, from what this decision did."""
    names = {name for name, _ in decision.webhooks}
    tier = ticket.tier_at_open
    for name, change in (("ticket.created", "opened"), ("ticket.closed", "closed")):
        if name in names:
            metrics.count_ticket(change, tier)
    if before in ("solved", "closed") and decision.changes.get("status") in ACTIVE:
        metrics.count_ticket("reopened", tier)
    if "ticket.sla_breached" in names:
        metrics.count_breach(tier)


async def _change(ctx: BatchContext, ticket: Ticket, decision: Decision) -> None:
    """Unguarded changes ride on the session's flush (the dispatcher's hot path: no extra statement); guarded
    ones are one conditional UPDATE that a concurrent change makes match nothing. The ticket rollups follow both:
    the flush's hooks see the first, the writer tells them of the second."""
    if not decision.guard:
        for name, value in decision.changes.items():
            setattr(ticket, name, value)
        return
    await ctx.session.flush()
    before = ticket_rollup.facts_of(ticket)
    if not await tickets_repo.update_if(ctx.session, ticket.id, decision.guard, decision.changes):
        await ctx.session.refresh(ticket)
        raise TicketError(f"T-{ticket.id} changed just now; look again and retry.", code="conflict")
    for name, value in decision.changes.items():
        set_committed_value(ticket, name, value)
    ticket_rollup.changed(ctx.session, before, ticket_rollup.facts_of(ticket))  # the flush did not see this UPDATE

