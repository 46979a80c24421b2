"""Who may see what: supervisors see everything, agents the tiers and queues they serve and their own tickets."""

from __future__ import annotations

from bot.desk.router import SUPERVISORS, DeskCall, DeskError, parse_ticket_ref
from crm_store.models import Agent, Customer, Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo


def may_see_tier(agent: Agent, tier: str | None) -> bool:
    return agent.role in SUPERVISORS or not agent.tiers or (tier or "potential") in agent.tiers


def may_see_ticket(agent: Agent, ticket: Ticket) -> bool:
    if agent.role in SUPERVISORS or ticket.assignee_id == agent.id:
        return True
    if agent.queues and ticket.queue not in agent.queues:
        return False
    return may_see_tier(agent, ticket.tier_at_open)


async def visible_ticket(call: DeskCall, ref: str) -> Ticket:
    """The ticket an agent named, if it exists and they may work on it (same answer either way: no leaks)."""
    ticket_id = parse_ticket_ref(ref)
    ticket = await call.ctx.session.get(Ticket, ticket_id)
    if ticket is None or not may_see_ticket(call.agent, ticket):
        raise DeskError(f"Ticket T-{ticket_id} does not exist or is not in your queues.")
    call.ticket_id = ticket.id
    return ticket


async def visible_customer(call: DeskCall, ref: str) -> Customer:
    """A customer by id, @username, email, phone, or a ticket (T-12) of theirs."""
    session = call.ctx.session
    customer = None
    if ref.upper().startswith("T-"):
        ticket = await visible_ticket(call, ref)
        customer = await customers_repo.get_customer(session, ticket.customer_id)
    else:
        customer = await customers_repo.find_customer(session, ref)
    if customer is None or not may_see_tier(call.agent, customer.manual_tier or customer.tier):
        raise DeskError(f"No customer {ref!r} in your tiers.")
    return customer


async def active_ticket_of(call: DeskCall, customer_id: int) -> Ticket | None:
    return (await tickets_repo.active_tickets(call.ctx.session, [customer_id])).get(customer_id)
