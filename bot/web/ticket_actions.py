"""The web's way into the ticket core, shared by the dashboard and the REST API: find a ticket the caller may
see, run core operations on it through the one writer, list what the caller may see, and open an API ticket
routed by the customer's stored tier. No ticket rule lives here: each step only gathers the facts an operation
needs (the customer's language, agents' states) and hands them to `bot.tickets`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbound import BatchContext
from bot.routing.policy import RoutingPolicy
from bot.tickets import (
    Actor,
    Decision,
    TicketError,
    apply,
    lifecycle,
    may_see_ticket,
    request_cause,
    ticket_work,
    work,
)
from bot.tickets.access import visible_ticket as core_visible_ticket
from bot.tickets.handoff import Handoff, open_for_person
from crm_store.models import Agent, Customer, Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import web as web_repo

Step = Callable[[Ticket, BatchContext], Awaitable[Decision]]
"""One core operation on a ticket, with the facts it needs gathered in the batch context."""


def policy_of(request: Request) -> RoutingPolicy:
    """The routing policy the dispatcher routes with (loaded once from the settings when no dispatcher runs)."""
    state = request.app.state
    policy = getattr(getattr(state.ctx, "dispatcher", None), "policy", None)
    if policy is None:
        policy = getattr(state, "routing_policy", None)
        if policy is None:
            from bot.app import load_policy

            policy = state.routing_policy = load_policy(state.ctx.settings)
    return policy


async def visible_ticket(session: AsyncSession, actor: Actor, ticket_id: int) -> Ticket:
    """The ticket if `actor` may see it; otherwise the core's "does not exist or is not in your queues"."""
    return await core_visible_ticket(session, actor, ticket_id)


async def change_ticket(
    request: Request, session: AsyncSession, actor: Actor, ticket_id: int, *steps: Step, cause: str | None = None
) -> tuple[Ticket, list[Decision]]:
    """Run `steps` in order on the ticket in one transaction, each written by the core's writer; a refusal
    (TicketError) anywhere writes nothing at all. `cause` (default: a new one) prefixes the outbox keys."""
    cause = cause or request_cause()
    decisions: list[Decision] = []
    async with session.begin():
        ticket = await visible_ticket(session, actor, ticket_id)
        async with ticket_work(session, request.app.state.ctx.settings, policy_of(request)) as ctx:
            for i, step in enumerate(steps):
                decision = await step(ticket, ctx)
                await apply(ctx, ticket, decision, actor, cause=cause if i == 0 else f"{cause}.{i}")
                decisions.append(decision)
    return ticket, decisions


async def visible_tickets(
    session: AsyncSession, actor: Actor, *, limit: int, cursor: int | None = None, newest_first: bool = False,
    **filters: Any,
) -> tuple[list[Ticket], int | None]:
    """Up to `limit` tickets `actor` may see, in id order after `cursor` (or newest first before it), and the id
    the next page continues from (None on the last page). Visibility is the core's rule, so rows are read in
    batches and kept when `may_see_ticket` says so; one page scans a bounded number of rows."""
    batch = limit + 1 if actor.is_supervisor else max(4 * limit, 200)
    shown: list[Ticket] = []
    for _ in range(10):
        where = {"before_id": cursor or 2**62} if newest_first else {"after_id": cursor}
        rows = await web_repo.list_tickets(session, limit=batch, **where, **filters)
        for ticket in rows:
            if may_see_ticket(actor, ticket):
                if len(shown) == limit:
                    return shown, shown[-1].id
                shown.append(ticket)
            cursor = ticket.id
        if len(rows) < batch:
            return shown, None
    return shown, cursor


async def _customer(ctx: BatchContext, ticket: Ticket) -> Customer:
    return await customers_repo.get_customer(ctx.session, ticket.customer_id)


async def _agent_name(ctx: BatchContext, agent_id: int | None) -> str:
    agent = await ctx.session.get(Agent, agent_id) if agent_id is not None else None
    return agent.name if agent is not None else ""


def close(actor: Actor, resolution: str = "") -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        customer = await _customer(ctx, ticket)
        return lifecycle.close(ticket, actor, resolution, now=ctx.now, language=customer.language,
                               by_name=actor.name)
    return step


def reopen(actor: Actor) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return lifecycle.reopen(ticket, actor, now=ctx.now)
    return step


def pending(actor: Actor, until: datetime | None = None) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return lifecycle.pending(ticket, actor, now=ctx.now, until=until)
    return step


def reply(actor: Actor, text: str) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        customer = await _customer(ctx, ticket)
        return work.reply(ticket, actor, text, now=ctx.now, customer_name=customer.name or "")
    return step


def note(actor: Actor, text: str) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return work.note(ticket, actor, text, now=ctx.now)
    return step


def assign(actor: Actor, agent_id: int | None) -> Step:
    """To `agent_id`, or back to the queue with None."""
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        target = (await ctx.agent_states()).get(agent_id) if agent_id is not None else None
        if agent_id is not None and target is None:
            raise TicketError(f"Agent {agent_id} does not exist.", code="invalid")
        return work.assign(ticket, actor, target, now=ctx.now, target_name=await _agent_name(ctx, agent_id))
    return step


def take(actor: Actor) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        holder = (await ctx.agent_states()).get(ticket.assignee_id) if ticket.assignee_id is not None else None
        return work.take(ticket, actor, now=ctx.now, holder=holder,
                         holder_name=await _agent_name(ctx, ticket.assignee_id))
    return step


def transfer(actor: Actor, queue: str) -> Step:
    """To another queue, where those serving it are told."""
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        agents = (await ctx.agent_states()).values()
        return work.transfer(ticket, actor, now=ctx.now, to_queue=queue, agents=agents)
    return step


def tag(actor: Actor, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return work.tag(ticket, actor, now=ctx.now, add=add, remove=remove)
    return step


def retag(actor: Actor, tags: list[str]) -> Step:
    """Make the ticket's tags exactly `tags`."""
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        keep = work.clean_tags(tags)
        return work.tag(ticket, actor, now=ctx.now, add=keep, remove=[t for t in ticket.tags or [] if t not in keep])
    return step


def priority(actor: Actor, value: int) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return work.set_priority(ticket, actor, value, now=ctx.now)
    return step


def subject(actor: Actor, text: str) -> Step:
    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        return work.set_subject(ticket, actor, text, now=ctx.now)
    return step


async def open_ticket(
    request: Request, session: AsyncSession, actor: Actor, customer: Customer, *, channel: str, subject: str,
    assignee_id: int | None = None,
) -> Ticket:
    """A ticket opened through the API, in the caller's transaction: routed like any other by the customer's
    stored tier (queue, priority, SLA times, the assignee routing picks, the agents' notices). The customer is
    not messaged: they did not write (an agent's reply reaches them). `assignee_id` then assigns it."""
    cause = request_cause()
    async with ticket_work(session, request.app.state.ctx.settings, policy_of(request)) as ctx:
        facts = (await customers_repo.customer_facts(session, [customer.id])).get(customer.id, {})
        handoff = Handoff(
            tier=facts.get("tier") or customer.tier, language=facts.get("language") or customer.language,
            key_account_manager_id=facts.get("kam"), customer_name=customer.name or f"C-{customer.id}",
            text=subject or "(no subject)", channel=channel, subject=subject, reason="opened via the API", ack=False,
        )
        ticket = await open_for_person(ctx, customer.id, handoff, actor, cause=cause, source="api")
        if assignee_id is not None and assignee_id != ticket.assignee_id:
            await apply(ctx, ticket, await assign(actor, assignee_id)(ticket, ctx), actor, cause=f"{cause}.1")
    return ticket
