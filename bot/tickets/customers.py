"""Merging two customers (the same person seen twice) as a plain decision, and its one writer.

Who may merge, which way and what each moved ticket records are decided here; the rows move through
`crm_store.repositories.customers.merge_customers`, and each ticket that moved gets a "customer_merged" event in
its audit trail through the ticket writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.tickets.access import Actor, TicketError
from bot.tickets.decision import Decision
from bot.tickets.writer import apply
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import web as web_repo

if TYPE_CHECKING:
    from bot.core.outbound import BatchContext

PAGE = 500


@dataclass(frozen=True, slots=True)
class CustomerMerge:
    """`source` goes into `target`: its identities, contacts, tickets, notes and value become the target's."""

    source_id: int
    target_id: int
    at: datetime

    def moved(self, ticket: Ticket) -> Decision:
        """What a ticket that moved records, so its trail still says whose it was."""
        d = Decision(changes={"updated_at": self.at})
        return d.event("customer_merged", from_customer_id=self.source_id, into_customer_id=self.target_id)


def merge(source: Any, target: Any, actor: Actor, *, now: datetime) -> CustomerMerge:
    """Supervisors merge; a customer is merged once, into a customer that is still itself."""
    if not actor.is_supervisor:
        raise TicketError("Only supervisors and admins may merge customers.", code="not_allowed")
    if source.id == target.id:
        raise TicketError(f"C-{source.id} cannot be merged into itself.", code="invalid")
    if source.merged_into_id is not None:
        raise TicketError(f"C-{source.id} was merged into C-{source.merged_into_id} already.", code="conflict")
    if target.merged_into_id is not None:
        raise TicketError(f"C-{target.id} was merged into C-{target.merged_into_id}; merge into that one.",
                          code="conflict")
    return CustomerMerge(source.id, target.id, now)


async def write_merge(ctx: BatchContext, decided: CustomerMerge, actor: Actor, *, cause: str) -> list[int]:
    """Move the rows and record the event on every ticket that moved; returns those tickets' numbers."""
    session = ctx.session
    tickets: list[Ticket] = []
    while page := await web_repo.list_tickets(session, customer_id=decided.source_id,
                                              after_id=tickets[-1].id if tickets else None, limit=PAGE):
        tickets.extend(page)
        if len(page) < PAGE:
            break
    await customers_repo.merge_customers(session, source_id=decided.source_id, target_id=decided.target_id)
    for ticket in tickets:
        await apply(ctx, ticket, decided.moved(ticket), actor, cause=cause)
    return [t.id for t in tickets]
