"""Bounces are logged on the ticket of the message that bounced, never as a new customer: a mailer daemon is
nobody's customer. A bounce of something we cannot find is logged on its own."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.messages import InboundMessage
from bot.core.outbound import BatchContext
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import tickets as tickets_repo

Target = tuple[int | None, int | None]  # (ticket id, customer id) of the message that bounced, if found


async def bounce_targets(session: AsyncSession, msgs: list[InboundMessage]) -> dict[str, Target]:
    """For each bounce in the batch (by its external id): where the bounced message was filed."""
    found: dict[str, Target] = {}
    for m in msgs:
        original = m.meta_value("bounce_of")
        if not original:
            continue
        contact = await contacts_repo.contact_by_external_id(session, m.channel, original)
        if contact is not None and contact.ticket_id is not None:
            found[m.external_id] = (contact.ticket_id, contact.customer_id)
        else:
            found[m.external_id] = (None, None)
    return found


async def record_bounce(ctx: BatchContext, ticket_id: int, m: InboundMessage) -> None:
    """The ticket shows the delivery problem, and its audit trail the bounce."""
    ticket = await tickets_repo.get_ticket(ctx.session, ticket_id)
    ticket.delivery_problem = f"{m.channel}: bounced ({m.text[:200]})"
    tickets_repo.add_event(ctx.session, ticket_id, "delivery_bounced", at=ctx.now, original=m.meta_value("bounce_of"))
